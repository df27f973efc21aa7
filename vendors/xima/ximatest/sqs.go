package ximatest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxSQSBody bounds an SQS request body; real requests here are tiny.
const maxSQSBody = 1 << 20

// apiError is an SQS error as the JSON protocol carries it: the status,
// the body's __type, and the query-compatible code of the
// X-Amzn-Query-Error header (what the SDK's ErrorCode returns).
type apiError struct {
	status  int
	typ     string
	code    string
	message string
}

func sqsErr(status int, typ, code, msg string) *apiError {
	return &apiError{status: status, typ: typ, code: code, message: msg}
}

func errInvalidClientToken() *apiError {
	return sqsErr(http.StatusForbidden, "com.amazon.coral.service#UnrecognizedClientException",
		"InvalidClientTokenId", "The security token included in the request is invalid.")
}

func errSignature() *apiError {
	return sqsErr(http.StatusForbidden, "com.amazon.coral.service#InvalidSignatureException",
		"SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. "+
			"Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
}

func errMissingToken() *apiError {
	return sqsErr(http.StatusForbidden, "com.amazon.coral.service#MissingAuthenticationTokenException",
		"MissingAuthenticationToken", "Missing Authentication Token")
}

func errIncompleteSignature(msg string) *apiError {
	return sqsErr(http.StatusBadRequest, "com.amazon.coral.service#IncompleteSignatureException",
		"IncompleteSignature", msg)
}

func errQueueDoesNotExist() *apiError {
	return sqsErr(http.StatusBadRequest, "com.amazonaws.sqs#QueueDoesNotExist",
		"AWS.SimpleQueueService.NonExistentQueue", "The specified queue does not exist.")
}

func errReceiptHandle(h string) *apiError {
	return sqsErr(http.StatusNotFound, "com.amazonaws.sqs#ReceiptHandleIsInvalid",
		"ReceiptHandleIsInvalid", fmt.Sprintf("The input receipt handle %q is not a valid receipt handle.", h))
}

func errNotInflight() *apiError {
	return sqsErr(http.StatusBadRequest, "com.amazonaws.sqs#MessageNotInflight",
		"AWS.SimpleQueueService.MessageNotInflight", "Message does not exist or is not available for visibility timeout change.")
}

func errInvalidParameter(msg string) *apiError {
	return sqsErr(http.StatusBadRequest, "com.amazon.coral.service#InvalidParameterValueException",
		"InvalidParameterValue", msg)
}

func errAccessDenied(op string) *apiError {
	return sqsErr(http.StatusForbidden, "com.amazon.coral.service#AccessDeniedException", "AccessDenied",
		"User is not authorized to perform: sqs:"+op+" (the fake grants what a chat widget's keys do)")
}

func writeSQSError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("X-Amzn-Query-Error", e.code+";Sender")
	w.Header().Set("X-Amzn-RequestId", newID())
	w.WriteHeader(e.status)
	w.Write(marshal(map[string]string{"__type": e.typ, "message": e.message}))
}

func writeSQS(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("X-Amzn-RequestId", newID())
	w.Write(marshal(v))
}

// serveSQS is the SQS endpoint: AWS JSON 1.0 (POST /, X-Amz-Target
// AmazonSQS.Op, a JSON body), SigV4 checked.
func (s *Server) serveSQS(w http.ResponseWriter, r *http.Request) {
	call := SQSCall{At: time.Now()}
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "AmazonSQS.")
	call.Op = op
	body, err := io.ReadAll(io.LimitReader(r.Body, maxSQSBody+1))
	var resp any
	var e *apiError
	var n int
	switch {
	case r.Method != http.MethodPost || !ok ||
		!strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-amz-json-1.0"):
		e = sqsErr(http.StatusBadRequest, "com.amazon.coral.service#UnknownOperationException",
			"UnknownOperation", "the fake speaks only the AWS JSON 1.0 protocol")
	case err != nil || len(body) > maxSQSBody:
		e = errInvalidParameter("request body unreadable or too large")
	default:
		call.AccessKey, e = s.authenticate(r, body, call.At)
		if e == nil {
			resp, n, e = s.dispatchSQS(r.Context(), op, body, &call)
		}
	}
	if e != nil {
		call.ErrorCode = e.code
		writeSQSError(w, e)
	} else {
		writeSQS(w, resp)
	}
	call.Messages = n
	s.mu.Lock()
	s.sqsCalls = append(s.sqsCalls, call)
	s.notifyLocked()
	s.mu.Unlock()
}

func (s *Server) dispatchSQS(ctx context.Context, op string, body []byte, call *SQSCall) (any, int, *apiError) {
	var in struct {
		QueueURL string `json:"QueueUrl"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, 0, sqsErr(http.StatusBadRequest, "com.amazon.coral.service#SerializationException",
			"SerializationException", err.Error())
	}
	call.QueueURL = in.QueueURL
	switch op {
	case "ReceiveMessage":
		return s.receive(ctx, body)
	case "DeleteMessage":
		out, e := s.deleteMessage(body)
		return out, 0, e
	case "DeleteMessageBatch":
		out, e := s.deleteBatch(body)
		return out, 0, e
	case "ChangeMessageVisibility":
		out, e := s.changeVisibility(body)
		return out, 0, e
	case "ChangeMessageVisibilityBatch":
		out, e := s.changeVisibilityBatch(body)
		return out, 0, e
	case "GetQueueAttributes":
		out, e := s.queueAttributes(body)
		return out, 0, e
	}
	return nil, 0, errAccessDenied(op)
}

// queueLocked finds the queue a QueueUrl names: by its path
// (/account/name), whatever the host, as SQS accepts a queue URL at its
// regional endpoint.
func (s *Server) queueLocked(rawURL string) (*queue, *apiError) {
	u, err := url.Parse(rawURL)
	if rawURL == "" || err != nil {
		return nil, sqsErr(http.StatusNotFound, "com.amazonaws.sqs#InvalidAddress", "InvalidAddress",
			"The address "+rawURL+" is not valid for this endpoint.")
	}
	acct, name, _ := strings.Cut(strings.Trim(u.Path, "/"), "/")
	q, ok := s.queues[name]
	if acct != Account || !ok || q.gone {
		return nil, errQueueDoesNotExist()
	}
	return q, nil
}

type receiveInput struct {
	QueueURL                    string   `json:"QueueUrl"`
	MaxNumberOfMessages         *int     `json:"MaxNumberOfMessages"`
	WaitTimeSeconds             *int     `json:"WaitTimeSeconds"`
	VisibilityTimeout           *int     `json:"VisibilityTimeout"`
	AttributeNames              []string `json:"AttributeNames"`
	MessageSystemAttributeNames []string `json:"MessageSystemAttributeNames"`
}

type messageOut struct {
	MessageID     string            `json:"MessageId"`
	ReceiptHandle string            `json:"ReceiptHandle"`
	MD5OfBody     string            `json:"MD5OfBody"`
	Body          string            `json:"Body"`
	Attributes    map[string]string `json:"Attributes,omitempty"`
}

func (in receiveInput) check() *apiError {
	switch {
	case in.MaxNumberOfMessages != nil && (*in.MaxNumberOfMessages < 1 || *in.MaxNumberOfMessages > 10):
		return errInvalidParameter("Value " + strconv.Itoa(*in.MaxNumberOfMessages) +
			" for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.")
	case in.WaitTimeSeconds != nil && (*in.WaitTimeSeconds < 0 || *in.WaitTimeSeconds > 20):
		return errInvalidParameter("Value " + strconv.Itoa(*in.WaitTimeSeconds) +
			" for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided.")
	case in.VisibilityTimeout != nil && (*in.VisibilityTimeout < 0 || *in.VisibilityTimeout > 43200):
		return errInvalidParameter("Value " + strconv.Itoa(*in.VisibilityTimeout) +
			" for parameter VisibilityTimeout is invalid. Reason: Must be >= 0 and <= 43200, if provided.")
	}
	return nil
}

// receive is ReceiveMessage: it answers at once when messages are visible,
// else waits up to WaitTimeSeconds for one (a put, or an in-flight message
// whose visibility timeout ends), then answers what it has (maybe nothing).
func (s *Server) receive(ctx context.Context, body []byte) (any, int, *apiError) {
	var in receiveInput
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, 0, errInvalidParameter(err.Error())
	}
	if e := in.check(); e != nil {
		return nil, 0, e
	}
	max, wait := 1, time.Duration(0)
	if in.MaxNumberOfMessages != nil {
		max = *in.MaxNumberOfMessages
	}
	if in.WaitTimeSeconds != nil {
		wait = time.Duration(*in.WaitTimeSeconds) * time.Second
	}
	names := append(in.AttributeNames, in.MessageSystemAttributeNames...)
	deadline := time.Now().Add(wait)

	s.mu.Lock()
	s.polling++
	s.notifyLocked()
	defer func() {
		s.polling--
		s.notifyLocked()
		s.mu.Unlock()
	}()
	for {
		q, e := s.queueLocked(in.QueueURL)
		if e != nil {
			return nil, 0, e
		}
		now := time.Now()
		vis := s.faults.visibility
		if in.VisibilityTimeout != nil {
			vis = time.Duration(*in.VisibilityTimeout) * time.Second
		}
		if got := s.takeLocked(q, max, vis, now); len(got) > 0 || !now.Before(deadline) {
			return receiveOutput(got, names), len(got), nil
		}
		wake := deadline
		if next := q.nextVisible(now); !next.IsZero() && next.Before(wake) && !s.faults.hold {
			wake = next
		}
		changed := s.changed
		s.mu.Unlock()
		t := time.NewTimer(wake.Sub(now))
		select {
		case <-changed:
		case <-t.C:
		case <-ctx.Done():
		case <-s.ctx.Done():
		}
		t.Stop()
		s.mu.Lock()
		if ctx.Err() != nil || s.ctx.Err() != nil {
			// The client went away, or the server is closing: take nothing.
			return struct{}{}, 0, nil
		}
	}
}

func receiveOutput(msgs []*message, names []string) any {
	if len(msgs) == 0 {
		return struct{}{} // SQS answers {} when there is nothing
	}
	out := make([]messageOut, len(msgs))
	for i, m := range msgs {
		out[i] = messageOut{MessageID: m.id, ReceiptHandle: m.handle, MD5OfBody: m.md5,
			Body: m.body, Attributes: m.attributes(names)}
	}
	return struct {
		Messages []messageOut `json:"Messages"`
	}{out}
}

type handleInput struct {
	QueueURL          string `json:"QueueUrl"`
	ReceiptHandle     string `json:"ReceiptHandle"`
	VisibilityTimeout *int   `json:"VisibilityTimeout"`
}

func (s *Server) deleteMessage(body []byte) (any, *apiError) {
	var in handleInput
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, errInvalidParameter(err.Error())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, e := s.queueLocked(in.QueueURL)
	if e != nil {
		return nil, e
	}
	if e := s.deleteLocked(q, in.ReceiptHandle); e != nil {
		return nil, e
	}
	return struct{}{}, nil
}

func (s *Server) changeVisibility(body []byte) (any, *apiError) {
	var in handleInput
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, errInvalidParameter(err.Error())
	}
	if in.VisibilityTimeout == nil || *in.VisibilityTimeout < 0 || *in.VisibilityTimeout > 43200 {
		return nil, errInvalidParameter("VisibilityTimeout must be between 0 and 43200")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, e := s.queueLocked(in.QueueURL)
	if e != nil {
		return nil, e
	}
	if e := s.changeVisibilityLocked(q, in.ReceiptHandle, *in.VisibilityTimeout, time.Now()); e != nil {
		return nil, e
	}
	return struct{}{}, nil
}

type batchInput struct {
	QueueURL string `json:"QueueUrl"`
	Entries  []struct {
		ID                string `json:"Id"`
		ReceiptHandle     string `json:"ReceiptHandle"`
		VisibilityTimeout *int   `json:"VisibilityTimeout"`
	} `json:"Entries"`
}

type batchOK struct {
	ID string `json:"Id"`
}

type batchFailed struct {
	ID          string `json:"Id"`
	Code        string `json:"Code"`
	Message     string `json:"Message"`
	SenderFault bool   `json:"SenderFault"`
}

type batchOutput struct {
	Successful []batchOK     `json:"Successful"`
	Failed     []batchFailed `json:"Failed"`
}

// validBatchID: 1 to 80 of alphanumerics, hyphens and underscores.
func validBatchID(id string) bool {
	if id == "" || len(id) > 80 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !unreserved(c) || c == '.' || c == '~' {
			return false
		}
	}
	return true
}

// check applies SQS's rules on batch entries.
func (in batchInput) check() *apiError {
	if len(in.Entries) == 0 {
		return sqsErr(http.StatusBadRequest, "com.amazonaws.sqs#EmptyBatchRequest",
			"AWS.SimpleQueueService.EmptyBatchRequest", "There should be at least one entry in the request.")
	}
	if len(in.Entries) > 10 {
		return sqsErr(http.StatusBadRequest, "com.amazonaws.sqs#TooManyEntriesInBatchRequest",
			"AWS.SimpleQueueService.TooManyEntriesInBatchRequest", "Maximum number of entries per request are 10.")
	}
	seen := make(map[string]bool)
	for _, en := range in.Entries {
		if !validBatchID(en.ID) {
			return sqsErr(http.StatusBadRequest, "com.amazonaws.sqs#InvalidBatchEntryId",
				"AWS.SimpleQueueService.InvalidBatchEntryId", "A batch entry id can only contain alphanumeric characters, hyphens and underscores.")
		}
		if seen[en.ID] {
			return sqsErr(http.StatusBadRequest, "com.amazonaws.sqs#BatchEntryIdsNotDistinct",
				"AWS.SimpleQueueService.BatchEntryIdsNotDistinct", "Id "+en.ID+" repeated.")
		}
		seen[en.ID] = true
	}
	return nil
}

func (s *Server) deleteBatch(body []byte) (any, *apiError) {
	return s.batch(body, func(q *queue, handle string, _ *int) *apiError {
		return s.deleteLocked(q, handle)
	})
}

func (s *Server) changeVisibilityBatch(body []byte) (any, *apiError) {
	return s.batch(body, func(q *queue, handle string, secs *int) *apiError {
		if secs == nil || *secs < 0 || *secs > 43200 {
			return errInvalidParameter("VisibilityTimeout must be between 0 and 43200")
		}
		return s.changeVisibilityLocked(q, handle, *secs, time.Now())
	})
}

// batch runs each entry on its own: one bad entry fails alone.
func (s *Server) batch(body []byte, each func(*queue, string, *int) *apiError) (any, *apiError) {
	var in batchInput
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, errInvalidParameter(err.Error())
	}
	if e := in.check(); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, e := s.queueLocked(in.QueueURL)
	if e != nil {
		return nil, e
	}
	out := batchOutput{Successful: []batchOK{}, Failed: []batchFailed{}}
	for _, en := range in.Entries {
		if e := each(q, en.ReceiptHandle, en.VisibilityTimeout); e != nil {
			out.Failed = append(out.Failed, batchFailed{en.ID, e.code, e.message, true})
			continue
		}
		out.Successful = append(out.Successful, batchOK{en.ID})
	}
	return out, nil
}

func (s *Server) queueAttributes(body []byte) (any, *apiError) {
	var in struct {
		QueueURL       string   `json:"QueueUrl"`
		AttributeNames []string `json:"AttributeNames"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, errInvalidParameter(err.Error())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, e := s.queueLocked(in.QueueURL)
	if e != nil {
		return nil, e
	}
	visible, inFlight := q.counts(time.Now())
	all := map[string]string{
		"ApproximateNumberOfMessages":           strconv.Itoa(visible),
		"ApproximateNumberOfMessagesNotVisible": strconv.Itoa(inFlight),
		"ApproximateNumberOfMessagesDelayed":    "0",
		"VisibilityTimeout":                     strconv.Itoa(int(s.faults.visibility / time.Second)),
		"ReceiveMessageWaitTimeSeconds":         "0",
		"QueueArn":                              q.arn,
		"CreatedTimestamp":                      strconv.FormatInt(q.created.Unix(), 10),
	}
	attrs := make(map[string]string)
	for _, n := range in.AttributeNames {
		if n == "All" {
			attrs = all
			break
		}
		if v, ok := all[n]; ok {
			attrs[n] = v
		}
	}
	return struct {
		Attributes map[string]string `json:"Attributes,omitempty"`
	}{attrs}, nil
}
