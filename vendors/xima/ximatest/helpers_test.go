package ximatest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// ctxFor is a context bounded well under the test timeout.
func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// httpClient is an HTTP client whose connections close with the test.
func httpClient(t *testing.T, jar http.CookieJar) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Jar: jar, Timeout: 30 * time.Second}
}

func newJar(t *testing.T) http.CookieJar {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return jar
}

// sqsClient is the real SDK client pointed at the fake, with the given
// credentials (the current ones when ak is "").
func sqsClient(t *testing.T, s *Server, ak, sk string) *sqs.Client {
	if ak == "" {
		ak, sk = s.Credentials()
	}
	return sqs.New(sqs.Options{
		Region:           s.Region(),
		BaseEndpoint:     aws.String(s.SQSEndpoint()),
		Credentials:      credentials.NewStaticCredentialsProvider(ak, sk, ""),
		HTTPClient:       httpClient(t, nil),
		RetryMaxAttempts: 1,
	})
}

// call makes one REST call; v (if not nil) is sent as JSON.
func call(t *testing.T, c *http.Client, method, url string, v any) (int, []byte, http.Header) {
	t.Helper()
	var body io.Reader
	if v != nil {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if v != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b, resp.Header
}

// session is the part of the ChatSession the tests use.
type session struct {
	SessionDetails struct {
		ServerToClientQueue struct {
			URL           string `json:"url"`
			ChatQueueType string `json:"chatQueueType"`
		} `json:"serverToClientQueue"`
		ID string `json:"id"`
	} `json:"sessionDetails"`
}

// startChat queues a chat through POST /chat/apiqueue with c (its jar gets
// the session cookie) and returns the chat id and queue URL.
func startChat(t *testing.T, s *Server, c *http.Client) (id, queueURL string) {
	t.Helper()
	status, b, _ := call(t, c, "POST", s.URL()+"/chat/apiqueue", map[string]any{
		"installationId": DefaultInstallationID, "email": "ann@example.com", "name": "Ann",
		"skill": "Sales", "apiKey": DefaultAPIKey,
		"customChatInfo": []map[string]string{{"name": "Phone", "value": "+15550100"}},
	})
	if status != http.StatusOK {
		t.Fatalf("apiqueue: %d %s", status, b)
	}
	var cs session
	if err := json.Unmarshal(b, &cs); err != nil {
		t.Fatal(err)
	}
	return cs.SessionDetails.ID, cs.SessionDetails.ServerToClientQueue.URL
}

// receive calls ReceiveMessage for up to 10 messages with the system
// attributes, waiting up to wait seconds.
func receive(t *testing.T, c *sqs.Client, queueURL string, wait int32) *sqs.ReceiveMessageOutput {
	t.Helper()
	out, err := c.ReceiveMessage(ctxFor(t), &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: wait,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
	})
	if err != nil {
		t.Fatalf("ReceiveMessage: %v", err)
	}
	return out
}

// apiCode is the error code the SDK reports for err ("" when it is not an
// API error).
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// bodies returns the bodies of msgs.
func bodies(out *sqs.ReceiveMessageOutput) []string {
	var b []string
	for _, m := range out.Messages {
		b = append(b, aws.ToString(m.Body))
	}
	return b
}
