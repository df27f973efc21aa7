package customerchanneltest

import (
	"encoding/json"
	"testing"
)

// TestForget: a forgotten conversation is gone from the state and its room,
// a join of it is answered by simError alone (no greetings, no
// conversationInfo) and a message to it is refused; the connection and the
// other conversations stay.
func TestForget(t *testing.T) {
	eios(t, func(t *testing.T, s *Server) {
		ctx := ctxT(t)
		c := dialPolling(t, s)
		gone := initChat(t, s, `{"firstName":"Ann","channel":"sms"}`)
		kept := initChat(t, s, `{"firstName":"Bob","channel":"sms"}`)
		join := func(r initResponse) {
			c.emit("joinConversation", map[string]string{"conversationId": r.ConversationID, "id": r.Participant.ID, "name": "x"})
		}
		join(gone)
		c.next("messageArrived")
		c.next("conversationInfo")

		if err := s.Forget(ctx, gone.ConversationID); err != nil {
			t.Fatal(err)
		}
		st, err := s.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Conversation(gone.ConversationID) != nil || st.Conversation(kept.ConversationID) == nil || len(st.Connected) != 1 {
			t.Errorf("after Forget: conversations %+v, connected %v", st.Conversations, st.Connected)
		}
		// The room is empty: an agent cannot reach it (the action fails) ...
		if err := s.Agent(ctx, AgentAction{ConversationID: gone.ConversationID, Action: "say", Text: "x"}); err == nil {
			t.Error("agent action on a forgotten conversation did not fail")
		}
		// ... and a rejoin is answered by simError only: the next event is the
		// simError, then the answer to a join of the kept conversation.
		join(gone)
		if e := c.next("simError"); !hasCode(e, "unknownConversation") {
			t.Errorf("rejoin: %s", e.Args)
		}
		c.emit("sendMessage", map[string]any{"type": "ChatMessage", "conversationId": gone.ConversationID,
			"from": gone.Participant, "text": "hello?"})
		if e := c.next("simError"); !hasCode(e, "unknownConversation") {
			t.Errorf("message: %s", e.Args)
		}
		join(kept)
		c.next("messageArrived")
		c.next("conversationInfo")

		if err := s.Forget(ctx, "nope"); err == nil {
			t.Error("Forget of an unknown conversation accepted")
		}
		if err := s.Forget(ctx, ""); err != nil {
			t.Fatal(err)
		}
		if st, err := s.State(ctx); err != nil || len(st.Conversations) != 0 {
			t.Errorf("after Forget(\"\"): %+v %v", st.Conversations, err)
		}
	})
}

func hasCode(e event, code string) bool {
	var se struct{ Code string }
	return len(e.Args) == 1 && json.Unmarshal(e.Args[0], &se) == nil && se.Code == code
}
