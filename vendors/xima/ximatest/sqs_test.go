package ximatest

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/go-cmp/cmp"
)

// chatWithClient starts a chat and returns its id, queue URL and an SDK
// client with the current credentials.
func chatWithClient(t *testing.T, s *Server) (string, string, *sqs.Client) {
	t.Helper()
	id, q := startChat(t, s, httpClient(t, newJar(t)))
	return id, q, sqsClient(t, s, "", "")
}

func TestLongPollReturnsWhenAMessageArrives(t *testing.T) {
	s := NewServer(t, Config{})
	id, q, c := chatWithClient(t, s)
	type result struct {
		out *sqs.ReceiveMessageOutput
		err error
	}
	done := make(chan result, 1)
	// The poll asks for 20 s and ctxFor gives up at 10 s: only a poll that
	// returns when the message comes can succeed.
	go func() {
		out, err := c.ReceiveMessage(ctxFor(t), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(q), MaxNumberOfMessages: 10, WaitTimeSeconds: 20})
		done <- result{out, err}
	}()
	if err := s.Wait(ctxFor(t), func() bool { return s.Polling() == 1 }); err != nil {
		t.Fatal(err)
	}
	if err := s.Say(id, "Hello, how can I help you today?"); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	want := []string{`{"type":"CHAT_TEXT","text":"Hello, how can I help you today?"}`}
	if diff := cmp.Diff(want, bodies(r.out)); diff != "" {
		t.Errorf("bodies (-want +got):\n%s", diff)
	}
	if s.Received() != 1 {
		t.Errorf("Received = %d, want 1", s.Received())
	}
}

// An empty long poll waits (the server counts it as polling) and then
// answers empty; judged by what the server shows, not by a clock.
func TestEmptyLongPollWaitsItsTime(t *testing.T) {
	s := NewServer(t, Config{})
	_, q, c := chatWithClient(t, s)
	done := make(chan *sqs.ReceiveMessageOutput, 1)
	go func() {
		out, err := c.ReceiveMessage(ctxFor(t), &sqs.ReceiveMessageInput{QueueUrl: aws.String(q), WaitTimeSeconds: 1})
		if err != nil {
			t.Errorf("ReceiveMessage: %v", err)
		}
		done <- out
	}()
	if err := s.Wait(ctxFor(t), func() bool { return s.Polling() == 1 }); err != nil {
		t.Fatalf("the empty poll was never seen waiting: %v", err)
	}
	if out := <-done; out == nil || len(out.Messages) != 0 {
		t.Errorf("got %v from an empty queue, want no messages", out)
	}
}

func TestDeleteAndVisibilityRedelivery(t *testing.T) {
	s := NewServer(t, Config{})
	s.SetVisibility(300 * time.Millisecond)
	id, q, c := chatWithClient(t, s)
	if err := s.Say(id, "one"); err != nil {
		t.Fatal(err)
	}
	first := receive(t, c, q, 0)
	if len(first.Messages) != 1 {
		t.Fatalf("got %d messages, want 1", len(first.Messages))
	}
	m1 := first.Messages[0]
	if got := m1.Attributes["ApproximateReceiveCount"]; got != "1" {
		t.Errorf("ApproximateReceiveCount = %q, want 1", got)
	}

	// Not deleted: it comes back once its visibility timeout is over, and
	// the long poll wakes for it: the poll asks for 20 s and receive gives
	// up at 10 s, so only a poll woken by the redelivery returns.
	second := receive(t, c, q, 20)
	if len(second.Messages) != 1 {
		t.Fatalf("redelivery: got %d messages, want 1", len(second.Messages))
	}
	m2 := second.Messages[0]
	if aws.ToString(m2.MessageId) != aws.ToString(m1.MessageId) || aws.ToString(m2.Body) != "" &&
		aws.ToString(m2.Body) != aws.ToString(m1.Body) {
		t.Errorf("redelivered %v, want the same message as %v", m2, m1)
	}
	if aws.ToString(m2.ReceiptHandle) == aws.ToString(m1.ReceiptHandle) {
		t.Error("redelivery kept its receipt handle; SQS issues a new one per receive")
	}
	if got := m2.Attributes["ApproximateReceiveCount"]; got != "2" {
		t.Errorf("ApproximateReceiveCount = %q, want 2", got)
	}
	if m1.Attributes["SentTimestamp"] != m2.Attributes["SentTimestamp"] {
		t.Error("SentTimestamp changed on redelivery")
	}

	// The stale handle "succeeds" without deleting, as in SQS.
	if _, err := c.DeleteMessage(ctxFor(t), &sqs.DeleteMessageInput{QueueUrl: aws.String(q), ReceiptHandle: m1.ReceiptHandle}); err != nil {
		t.Fatalf("delete with the stale handle: %v", err)
	}
	if s.Deleted() != 0 {
		t.Fatalf("Deleted = %d after a stale handle, want 0", s.Deleted())
	}
	if _, err := c.DeleteMessage(ctxFor(t), &sqs.DeleteMessageInput{QueueUrl: aws.String(q), ReceiptHandle: m2.ReceiptHandle}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if s.Deleted() != 1 {
		t.Errorf("Deleted = %d, want 1", s.Deleted())
	}
	attrs, err := c.GetQueueAttributes(ctxFor(t), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(q),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll}})
	if err != nil {
		t.Fatal(err)
	}
	if attrs.Attributes["ApproximateNumberOfMessages"] != "0" || attrs.Attributes["ApproximateNumberOfMessagesNotVisible"] != "0" {
		t.Errorf("after delete the queue holds %v", attrs.Attributes)
	}
	// Deleting again with the same handle succeeds.
	if _, err := c.DeleteMessage(ctxFor(t), &sqs.DeleteMessageInput{QueueUrl: aws.String(q), ReceiptHandle: m2.ReceiptHandle}); err != nil {
		t.Errorf("second delete: %v", err)
	}
}

func TestChangeMessageVisibility(t *testing.T) {
	s := NewServer(t, Config{})
	id, q, c := chatWithClient(t, s)
	if err := s.Say(id, "one"); err != nil {
		t.Fatal(err)
	}
	out, err := c.ReceiveMessage(ctxFor(t), &sqs.ReceiveMessageInput{QueueUrl: aws.String(q), VisibilityTimeout: 600})
	if err != nil || len(out.Messages) != 1 {
		t.Fatalf("receive: %v %v", out, err)
	}
	h := out.Messages[0].ReceiptHandle
	if got := receive(t, c, q, 0); len(got.Messages) != 0 {
		t.Fatalf("in-flight message received again: %v", bodies(got))
	}
	if _, err := c.ChangeMessageVisibility(ctxFor(t), &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(q), ReceiptHandle: h, VisibilityTimeout: 0}); err != nil {
		t.Fatal(err)
	}
	again := receive(t, c, q, 0)
	if diff := cmp.Diff([]string{`{"type":"CHAT_TEXT","text":"one"}`}, bodies(again)); diff != "" {
		t.Errorf("after visibility 0 (-want +got):\n%s", diff)
	}

	// The old handle no longer names an in-flight receive.
	_, err = c.ChangeMessageVisibility(ctxFor(t), &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(q), ReceiptHandle: h, VisibilityTimeout: 10})
	var notInflight *types.MessageNotInflight
	if !errors.As(err, &notInflight) || apiCode(err) != "AWS.SimpleQueueService.MessageNotInflight" {
		t.Errorf("stale handle: err = %v (code %q), want MessageNotInflight", err, apiCode(err))
	}
	_, err = c.ChangeMessageVisibility(ctxFor(t), &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(q), ReceiptHandle: aws.String("junk"), VisibilityTimeout: 10})
	var invalid *types.ReceiptHandleIsInvalid
	if !errors.As(err, &invalid) {
		t.Errorf("junk handle: err = %v, want ReceiptHandleIsInvalid", err)
	}
}

func TestBatches(t *testing.T) {
	s := NewServer(t, Config{})
	id, q, c := chatWithClient(t, s)
	for _, line := range []string{"a", "b"} {
		if err := s.Say(id, line); err != nil {
			t.Fatal(err)
		}
	}
	out := receive(t, c, q, 0)
	if len(out.Messages) != 2 {
		t.Fatalf("got %d messages, want 2", len(out.Messages))
	}
	cv, err := c.ChangeMessageVisibilityBatch(ctxFor(t), &sqs.ChangeMessageVisibilityBatchInput{
		QueueUrl: aws.String(q), Entries: []types.ChangeMessageVisibilityBatchRequestEntry{
			{Id: aws.String("a"), ReceiptHandle: out.Messages[0].ReceiptHandle, VisibilityTimeout: 100},
			{Id: aws.String("bad"), ReceiptHandle: aws.String("AQEBnope"), VisibilityTimeout: 100},
		}})
	if err != nil {
		t.Fatal(err)
	}
	if len(cv.Successful) != 1 || len(cv.Failed) != 1 || aws.ToString(cv.Failed[0].Code) != "ReceiptHandleIsInvalid" {
		t.Errorf("ChangeMessageVisibilityBatch = %+v", cv)
	}
	del, err := c.DeleteMessageBatch(ctxFor(t), &sqs.DeleteMessageBatchInput{
		QueueUrl: aws.String(q), Entries: []types.DeleteMessageBatchRequestEntry{
			{Id: aws.String("m0"), ReceiptHandle: out.Messages[0].ReceiptHandle},
			{Id: aws.String("m1"), ReceiptHandle: out.Messages[1].ReceiptHandle},
			{Id: aws.String("bad"), ReceiptHandle: aws.String("AQEBnope")},
		}})
	if err != nil {
		t.Fatal(err)
	}
	var ok []string
	for _, e := range del.Successful {
		ok = append(ok, aws.ToString(e.Id))
	}
	if diff := cmp.Diff([]string{"m0", "m1"}, ok); diff != "" || len(del.Failed) != 1 ||
		aws.ToString(del.Failed[0].Id) != "bad" || !del.Failed[0].SenderFault {
		t.Errorf("DeleteMessageBatch = %+v (successful diff %s)", del, diff)
	}
	if s.Deleted() != 2 {
		t.Errorf("Deleted = %d, want 2", s.Deleted())
	}
	_, err = c.DeleteMessageBatch(ctxFor(t), &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(q),
		Entries: []types.DeleteMessageBatchRequestEntry{}})
	var empty *types.EmptyBatchRequest
	if !errors.As(err, &empty) {
		t.Errorf("empty batch: err = %v, want EmptyBatchRequest", err)
	}
	_, err = c.DeleteMessageBatch(ctxFor(t), &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(q),
		Entries: []types.DeleteMessageBatchRequestEntry{
			{Id: aws.String("x"), ReceiptHandle: aws.String("h")}, {Id: aws.String("x"), ReceiptHandle: aws.String("h")}}})
	var dup *types.BatchEntryIdsNotDistinct
	if !errors.As(err, &dup) {
		t.Errorf("repeated ids: err = %v, want BatchEntryIdsNotDistinct", err)
	}
}

func TestDuplicates(t *testing.T) {
	s := NewServer(t, Config{})
	id, q, c := chatWithClient(t, s)
	s.Duplicate(1)
	for _, line := range []string{"a", "b"} {
		if err := s.Say(id, line); err != nil {
			t.Fatal(err)
		}
	}
	out := receive(t, c, q, 0)
	want := []string{`{"type":"CHAT_TEXT","text":"a"}`, `{"type":"CHAT_TEXT","text":"a"}`, `{"type":"CHAT_TEXT","text":"b"}`}
	if diff := cmp.Diff(want, bodies(out)); diff != "" {
		t.Fatalf("bodies (-want +got):\n%s", diff)
	}
	m := out.Messages
	if aws.ToString(m[0].MessageId) != aws.ToString(m[1].MessageId) || aws.ToString(m[1].MessageId) == aws.ToString(m[2].MessageId) {
		t.Errorf("message ids %s %s %s: want the duplicate to share the first's id only",
			aws.ToString(m[0].MessageId), aws.ToString(m[1].MessageId), aws.ToString(m[2].MessageId))
	}
	// Deleting one copy leaves the other.
	if _, err := c.DeleteMessage(ctxFor(t), &sqs.DeleteMessageInput{QueueUrl: aws.String(q), ReceiptHandle: m[0].ReceiptHandle}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ChangeMessageVisibility(ctxFor(t), &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(q), ReceiptHandle: m[1].ReceiptHandle, VisibilityTimeout: 0}); err != nil {
		t.Fatalf("the other copy is not in flight any more: %v", err)
	}
}

func TestReorderKeepsSentTimestamp(t *testing.T) {
	s := NewServer(t, Config{})
	id, q, c := chatWithClient(t, s)
	s.Hold(true)
	s.Reorder(true)
	for _, line := range []string{"1", "2", "3"} {
		if err := s.Say(id, line); err != nil {
			t.Fatal(err)
		}
	}
	if got := receive(t, c, q, 0); len(got.Messages) != 0 {
		t.Fatalf("held messages delivered: %v", bodies(got))
	}
	s.Hold(false)
	out := receive(t, c, q, 0)
	want := []string{`{"type":"CHAT_TEXT","text":"3"}`, `{"type":"CHAT_TEXT","text":"2"}`, `{"type":"CHAT_TEXT","text":"1"}`}
	if diff := cmp.Diff(want, bodies(out)); diff != "" {
		t.Fatalf("bodies (-want +got):\n%s", diff)
	}
	msgs := slices.Clone(out.Messages)
	slices.SortFunc(msgs, func(a, b types.Message) int {
		x, _ := strconv.ParseInt(a.Attributes["SentTimestamp"], 10, 64)
		y, _ := strconv.ParseInt(b.Attributes["SentTimestamp"], 10, 64)
		return int(x - y)
	})
	var sorted []string
	for i, m := range msgs {
		sorted = append(sorted, aws.ToString(m.Body))
		if i > 0 && m.Attributes["SentTimestamp"] == msgs[i-1].Attributes["SentTimestamp"] {
			t.Errorf("SentTimestamp %s repeated: it must order the batch", m.Attributes["SentTimestamp"])
		}
	}
	slices.Reverse(want)
	if diff := cmp.Diff(want, sorted); diff != "" {
		t.Errorf("sorted by SentTimestamp (-want +got):\n%s", diff)
	}
}

func TestHeldLongPollWakesOnRelease(t *testing.T) {
	s := NewServer(t, Config{})
	id, q, c := chatWithClient(t, s)
	s.Hold(true)
	if err := s.Say(id, "x"); err != nil {
		t.Fatal(err)
	}
	done := make(chan *sqs.ReceiveMessageOutput, 1)
	go func() {
		out, _ := c.ReceiveMessage(ctxFor(t), &sqs.ReceiveMessageInput{QueueUrl: aws.String(q), WaitTimeSeconds: 20})
		done <- out
	}()
	if err := s.Wait(ctxFor(t), func() bool { return s.Polling() == 1 }); err != nil {
		t.Fatal(err)
	}
	s.Hold(false)
	if out := <-done; out == nil || len(out.Messages) != 1 {
		t.Errorf("after release: %v", out)
	}
}

func TestRotatedCredentialsRefused(t *testing.T) {
	s := NewServer(t, Config{})
	_, q, old := chatWithClient(t, s)
	receive(t, old, q, 0)
	s.RotateCredentials()
	_, err := old.ReceiveMessage(ctxFor(t), &sqs.ReceiveMessageInput{QueueUrl: aws.String(q)})
	if apiCode(err) != "InvalidClientTokenId" {
		t.Fatalf("old credentials: err = %v (code %q), want InvalidClientTokenId", err, apiCode(err))
	}
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusForbidden {
		t.Errorf("old credentials: want HTTP 403, got %v", err)
	}
	calls := s.SQSCalls()
	if last := calls[len(calls)-1]; last.ErrorCode != "InvalidClientTokenId" || last.Op != "ReceiveMessage" {
		t.Errorf("last SQS call recorded as %+v", last)
	}

	// The new ones, from /chat/queue/auth, work.
	status, b, _ := call(t, httpClient(t, nil), "GET", s.URL()+"/chat/queue/auth?installation-id="+DefaultInstallationID, nil)
	var creds struct{ SqsAccessKey, SqsSecretKey, SqsRegion string }
	if err := json.Unmarshal(b, &creds); status != http.StatusOK || err != nil {
		t.Fatalf("auth: %d %s %v", status, b, err)
	}
	if creds.SqsRegion != DefaultRegion {
		t.Errorf("sqsRegion = %q", creds.SqsRegion)
	}
	receive(t, sqsClient(t, s, creds.SqsAccessKey, creds.SqsSecretKey), q, 0)
}

func TestCredentialTTL(t *testing.T) {
	s := NewServer(t, Config{CredentialTTL: 200 * time.Millisecond})
	_, q, c := chatWithClient(t, s)
	ak, _ := s.Credentials()
	receive(t, c, q, 0)
	time.Sleep(250 * time.Millisecond) // the credentials' lifetime passing is the stimulus
	_, err := c.ReceiveMessage(ctxFor(t), &sqs.ReceiveMessageInput{QueueUrl: aws.String(q)})
	if apiCode(err) != "InvalidClientTokenId" {
		t.Fatalf("expired credentials: err = %v, want InvalidClientTokenId", err)
	}
	ak2, sk2 := s.Credentials()
	if ak2 == ak {
		t.Fatal("expired credentials handed out again")
	}
	receive(t, sqsClient(t, s, ak2, sk2), q, 0)
}

func TestBadSignatureRefused(t *testing.T) {
	s := NewServer(t, Config{})
	_, q, _ := chatWithClient(t, s)
	ak, sk := s.Credentials()
	_, err := sqsClient(t, s, ak, sk+"x").ReceiveMessage(ctxFor(t), &sqs.ReceiveMessageInput{QueueUrl: aws.String(q)})
	if apiCode(err) != "SignatureDoesNotMatch" {
		t.Errorf("wrong secret: err = %v, want SignatureDoesNotMatch", err)
	}
	other := sqs.New(sqs.Options{Region: "eu-west-1", BaseEndpoint: aws.String(s.SQSEndpoint()),
		Credentials: sqsClient(t, s, "", "").Options().Credentials, HTTPClient: httpClient(t, nil), RetryMaxAttempts: 1})
	_, err = other.ReceiveMessage(ctxFor(t), &sqs.ReceiveMessageInput{QueueUrl: aws.String(q)})
	if apiCode(err) != "SignatureDoesNotMatch" {
		t.Errorf("wrong region: err = %v, want SignatureDoesNotMatch", err)
	}
	// Unsigned: the fake's own client, no Authorization header.
	req, _ := http.NewRequest("POST", s.SQSEndpoint(), nil)
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Target", "AmazonSQS.ReceiveMessage")
	resp, err := httpClient(t, nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Amzn-Query-Error") != "MissingAuthenticationToken;Sender" {
		t.Errorf("unsigned: %d %q", resp.StatusCode, resp.Header.Get("X-Amzn-Query-Error"))
	}
}

func TestQueueGone(t *testing.T) {
	s := NewServer(t, Config{})
	id, q, c := chatWithClient(t, s)
	s.Forget(id)
	_, err := c.ReceiveMessage(ctxFor(t), &sqs.ReceiveMessageInput{QueueUrl: aws.String(q)})
	var gone *types.QueueDoesNotExist
	if !errors.As(err, &gone) || apiCode(err) != "AWS.SimpleQueueService.NonExistentQueue" {
		t.Errorf("forgotten chat's queue: err = %v (code %q), want QueueDoesNotExist", err, apiCode(err))
	}
	if err := s.Say(id, "late"); !errors.Is(err, ErrNoChat) {
		t.Errorf("Say to a forgotten chat: %v, want ErrNoChat", err)
	}
}

func TestLongPollSeesQueueDeleted(t *testing.T) {
	s := NewServer(t, Config{})
	id, q, c := chatWithClient(t, s)
	done := make(chan error, 1)
	go func() {
		_, err := c.ReceiveMessage(ctxFor(t), &sqs.ReceiveMessageInput{QueueUrl: aws.String(q), WaitTimeSeconds: 20})
		done <- err
	}()
	if err := s.Wait(ctxFor(t), func() bool { return s.Polling() == 1 }); err != nil {
		t.Fatal(err)
	}
	s.Forget(id)
	var gone *types.QueueDoesNotExist
	if err := <-done; !errors.As(err, &gone) {
		t.Errorf("long poll on a deleted queue: %v, want QueueDoesNotExist", err)
	}
}

func TestOtherOperationsDenied(t *testing.T) {
	s := NewServer(t, Config{})
	_, q, c := chatWithClient(t, s)
	_, err := c.SendMessage(ctxFor(t), &sqs.SendMessageInput{QueueUrl: aws.String(q), MessageBody: aws.String("x")})
	if apiCode(err) != "AccessDenied" {
		t.Errorf("SendMessage: err = %v, want AccessDenied", err)
	}
	_, err = c.ReceiveMessage(ctxFor(t), &sqs.ReceiveMessageInput{QueueUrl: aws.String(q), MaxNumberOfMessages: 11})
	if apiCode(err) != "InvalidParameterValue" {
		t.Errorf("MaxNumberOfMessages 11: err = %v, want InvalidParameterValue", err)
	}
}

// TestMessageShapes checks every agent-side message against the document's
// JSON, byte for byte.
func TestMessageShapes(t *testing.T) {
	s := NewServer(t, Config{})
	id, q, c := chatWithClient(t, s)
	steps := []func() error{
		func() error { return s.EstimatedWait(id, 2*time.Minute) },
		func() error { return s.StartChat(id, "Myles") },
		func() error { return s.Typing(id, true) },
		func() error { return s.Say(id, "a <b>bold</b> & \"quoted\" line") },
		func() error { return s.Typing(id, false) },
		func() error { return s.Transfer(id, "Shawn") },
		func() error { return s.Screenshot(id) },
		func() error { return s.Raw(id, "not json") },
		func() error { return s.End(id) },
		func() error { return s.ForceClose(id) },
		func() error { return s.MultimediaDown(id) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	img := agentImage
	want := []string{
		`{"type":"ESTIMATED_WAIT_TIME","estimatedWait":"about 2 minutes"}`,
		`{"type":"CHAT_STARTED","agent":"Myles","agentBase64Image":"` + img + `"}`,
		`{"type":"AGENT_TYPING","isTyping":"true"}`,
		`{"type":"CHAT_TEXT","text":"a <b>bold</b> & \"quoted\" line"}`,
		`{"type":"AGENT_TYPING","isTyping":"false"}`,
		`{"type":"CHAT_TRANSFERRED","newAgent":"Shawn","newAgentImage":"` + img + `"}`,
		`{"type":"TAKE_SCREENSHOT"}`,
		`not json`,
		`{"type":"CHAT_ENDED"}`,
		`{"type":"FORCE_CLOSE"}`,
		`{"type":"MULTIMEDIA_DOWN"}`,
	}
	var got []string
	for len(got) < len(want) {
		out := receive(t, c, q, 0)
		if len(out.Messages) == 0 {
			break
		}
		got = append(got, bodies(out)...)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("bodies (-want +got):\n%s", diff)
	}
	ch, _ := s.Chat(id)
	if ch.Agent != "Shawn" || ch.Ended != EndedByAgent {
		t.Errorf("chat after the script: agent %q, ended %q", ch.Agent, ch.Ended)
	}
}

func TestSNSEnvelope(t *testing.T) {
	s := NewServer(t, Config{})
	id, q, c := chatWithClient(t, s)
	s.WrapSNS(true)
	if err := s.Say(id, "hi & bye"); err != nil {
		t.Fatal(err)
	}
	out := receive(t, c, q, 0)
	if len(out.Messages) != 1 {
		t.Fatalf("got %d messages", len(out.Messages))
	}
	var env struct{ Type, MessageId, TopicArn, Message, Timestamp, SignatureVersion string }
	if err := json.Unmarshal([]byte(aws.ToString(out.Messages[0].Body)), &env); err != nil {
		t.Fatal(err)
	}
	if env.Type != "Notification" || env.MessageId == "" || env.TopicArn == "" || env.SignatureVersion != "1" {
		t.Errorf("envelope = %+v", env)
	}
	if env.Message != `{"type":"CHAT_TEXT","text":"hi & bye"}` {
		t.Errorf("envelope Message = %q", env.Message)
	}
}

func TestWaitText(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "less than a minute", 59 * time.Second: "less than a minute", time.Minute: "about 1 minute",
		89 * time.Second: "about 1 minute", 90 * time.Second: "about 2 minutes", 10 * time.Minute: "about 10 minutes",
	} {
		if got := WaitText(d); got != want {
			t.Errorf("WaitText(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestCloseEndsLongPolls(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, q, c := chatWithClient(t, s)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.ReceiveMessage(ctxFor(t), &sqs.ReceiveMessageInput{QueueUrl: aws.String(q), WaitTimeSeconds: 20})
	}()
	if err := s.Wait(ctxFor(t), func() bool { return s.Polling() == 1 }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// The poll asked for 20 s: give up well before, so only a Close that
	// ends it passes.
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close left the long poll waiting")
	}
	if s.Polling() != 0 {
		t.Errorf("Polling = %d after Close", s.Polling())
	}
}
