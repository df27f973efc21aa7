// Package whosontest is a fake WhosOn Chat API server (the visitor side,
// JSON over a WebSocket) with a scripted operator, in the style of
// net/http/httptest: New starts it on 127.0.0.1, URL gives "ws://host:port"
// (the Chat API has no path), and accessors report what it received.
//
// # Wire
//
// Clients send {"Command": name, "Parameters": [strings] | null}; command
// names are case-insensitive. The server sends
// {"EventName": name, "ChatUid": uid | null, "Data": ...}, with the event
// names and Data shapes of WhosOn's Chat API documentation:
//
//   - Connect (auth string, domain, visitor IP, cookie, user agent, referrer,
//     API key) answers connected, whose Data carries a new SessionID and the
//     site settings (LeaveMessageEnabled is Operator.LeaveMessageEnabled).
//     A wrong auth string or domain answers error "Access Denied", a wrong
//     API key another error; either closes the socket, and three refused
//     Connects blacklist the IP.
//   - Hello answers accepted (Data: the paging message) followed by a newline
//     pagingmessage, or notaccepted (a string) when Operator.NotAccepted or
//     when Hello names another operator. Then, when QueueFor is set, a
//     newline queuemessage and a queue event each second with the position
//     counting down to "1"; after JoinDelay, operatorjoined (an operator
//     object), and the Greeting as newline linesays ("Alice says:") + lineo
//     (+ linet when Translate is set).
//   - Message (at most 4000 characters) is echoed as newline linesays
//     ("Name says:") + linev, and answered by Operator.Reply as typing,
//     linesays, lineo, [linet], typingstop. Lines sent before the operator
//     joins are answered after the greeting.
//   - Quit from the visitor ends the chat silently; Server.Quit sends the
//     quit event. LeaveMessage and PostChatSurvey answer acknowledged
//     (ChatUid ""); the document shows no answer to LeaveMessage, so clients
//     should not wait for one. GetOperators answers operators, GetImage image.
//     Preview, StartTyping, StopTyping, File, DynamicField and Transcript are
//     recorded (Commands).
//   - Commands after Connect must carry a SessionID issued on the socket or
//     to its chat, else an error event answers them (the socket stays open),
//     as it does for too few parameters, a command before Connect, or a
//     Message without a live chat.
//   - Malformed JSON, a binary frame or an unknown command name blacklists the
//     client IP (the first X-Forwarded-For address, else the peer address),
//     answers an error event and closes the socket with status 1008. The
//     blacklist is always recorded (Blacklisted) and enforced (HTTP 403 on
//     upgrade) only with Config.EnforceBlacklist.
//
// # Transport
//
// A benchmark holds some 19,000 chats in the process it measures with, so
// an idle chat is cheap: one goroutine, which reads its socket (and answers
// pings and close frames), and a few KiB of heap. Sockets are upgraded with
// gorilla/websocket: a 256-byte read buffer, each frame read into a pooled
// buffer, write buffers borrowed from a pool for one frame at a time (a
// frame over 16 KiB goes out as several WebSocket frames). Events are
// written, one frame each, by a goroutine that runs only while some are
// queued; the operator script waits on timers, and answers lines on a
// goroutine that lives only while lines wait. A socket the server fails
// (status 1008) waits up to 5s for the client's close frame.
//
// # Resume
//
// A chat survives its socket dropping for Config.ResumeGrace; events produced
// meanwhile (operator replies, Say) are kept. A client continues it by
// connecting again and sending Connect with the same visitor tracking
// cookie (4th parameter). The chat's ChatUid is also accepted in place of
// the cookie, or as an optional 8th parameter, and names the chat exactly
// (taking it over even if the server still thinks its old socket is open);
// a cookie alone matches the newest detached live chat with that cookie, so
// cookies should be unique per conversation. When the chat can continue, the
// connected event carries its ChatUid and a new SessionID (the old ones stay
// valid), then the kept events follow, and the operator script goes on. No
// Hello is needed (a repeated Hello just answers accepted again).
//
// When the Connect refers to a chat (by cookie or ChatUid) that cannot
// continue (ended, forgotten with Forget, or detached for longer than the
// grace), connected carries a NEW ChatUid, which a following Hello then
// uses; a client compares it with the one it stored and gives up the old
// chat. With RefuseReattach on, every Connect that refers to a chat is
// answered that way (a server that does not re-attach chats to a new
// socket). A Connect that refers to no chat gets ChatUid null, as in the
// document.
//
// # Operator side
//
// Say, Typing, Quit, Line, SendEvent and SendEvents act as the operator on
// a live chat; DropAll, Drop, Forget, SetDown, RefuseReattach and SetFlood
// (unsolicited events before connected, counted by Flooded) misbehave;
// Chats, VisitorLines, AllVisitorLines, WaitVisitorLines, WaitChats,
// LeftMessages, Blacklisted and Commands report; OnVisitorLine and
// OnResume call back as lines arrive and chats resume (benchmarks time
// them). Close drops every socket and waits for every goroutine.
package whosontest
