// Package ximatest is a fake of Xima's Chronicall web chat cloud service
// (the API a custom chat widget uses), in the style of net/http/httptest:
// NewServer starts it on two 127.0.0.1 ports, one for the REST API (URL)
// and one for the Amazon SQS queues the agent side writes to
// (SQSEndpoint), which speaks the AWS JSON 1.0 protocol of the real
// github.com/aws/aws-sdk-go-v2/service/sqs client, SigV4 checked.
//
// # REST
//
//   - POST /chat/apiqueue {installationId, email, name, skill, apiKey,
//     customChatInfo}: 401 for a wrong apiKey, 404 for another
//     installation, else 200 with the ChatSession
//     ({"sessionDetails": {serverToClientQueue, clientToServerQueue, id,
//     ...}}) and a JSESSIONID cookie (the browser session).
//   - POST /chat/queue (the captcha flow) is always refused, 403.
//   - GET /chat/queue?existingChatSessionId=: 200 with the ChatSession of a
//     live chat, else 204.
//   - GET /chat/queue/auth?installation-id=: {sqsAccessKey, sqsSecretKey,
//     sqsRegion}.
//   - POST /chat {chatSessionId, message} 200; /chat/still-here
//     {chatSessionId} 200; /chat/typing {chatSessionId, typing} 204;
//     /chat/focus {chatSessionId, focused} 204; /screenshot/notify
//     {chatSessionId, status, uuid} 204. Booleans must be the strings
//     "true"/"false"; any other JSON type is a 400. A chat that is unknown,
//     ended or gone answers 404.
//   - POST /chat/end: no body; the JSESSIONID cookie finds the chat (204);
//     without a session the server knows, 400 and nothing ends.
//
// A live chat with no still-here for Config.StillHereLimit is gone: its
// queue is deleted (ReceiveMessage answers QueueDoesNotExist), REST calls
// naming it answer 404 and the session check 204.
//
// # SQS
//
// One standard queue per chat (serverToClientQueue); StartChat, Say,
// Typing, Transfer, EstimatedWait, Screenshot, End, ForceClose,
// MultimediaDown and Raw put the document's JSON messages on it.
// ReceiveMessage (long poll up to 20 s, up to 10 messages, visibility
// timeout, system attributes), DeleteMessage(Batch),
// ChangeMessageVisibility(Batch) and GetQueueAttributes behave as SQS's do;
// other operations are AccessDenied. Requests signed with credentials other
// than the current ones answer 403 InvalidClientTokenId, a wrong signature
// or scope 403 SignatureDoesNotMatch.
//
// Faults: Duplicate, Reorder, Hold, WrapSNS, SetVisibility,
// RotateCredentials, Forget, FailREST. Records: Chats, Requests, SQSCalls,
// Received, Deleted, Polling; Wait re-checks a condition on every change.
package ximatest
