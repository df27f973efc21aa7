package smstest

import (
	"fmt"
	"net/http"
)

// apiError is Twilio's error document, which twilio-go decodes into
// *client.TwilioRestError.
type apiError struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info,omitempty"`
	Status   int    `json:"status"`
}

func newAPIError(status, code int, msg string) apiError {
	e := apiError{Code: code, Message: msg, Status: status}
	if code != 0 {
		e.MoreInfo = fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code)
	}
	return e
}

// Error codes the API answers; see https://www.twilio.com/docs/api/errors.
const (
	codeInvalidParameter = 20001
	codeAuthenticate     = 20003
	codeNotFound         = 20404
	codeInvalidTo        = 21211
	codeBodyRequired     = 21602
	codeFromRequired     = 21603
	codeToRequired       = 21604
	codeUnsubscribed     = 21610
	codeBodyTooLong      = 21617
	codeInvalidMediaURL  = 21620
	codeTooManyMedia     = 21623
	codeQueueFull        = 21611
	// Codes a created message fails with (status "failed"), not API answers.
	codeLoopLimit      = 14107 // more than 30 messages between two numbers in 30 s
	codeQueueOverflow  = 30001 // a Messaging Service's queue overflowed
	codeMediaRetrieval = 11200 // a MediaUrl could not be downloaded (HTTP retrieval failure)
	codeMediaType      = 12300 // a MediaUrl's Content-Type is not accepted
	codeMediaTooLarge  = 11751 // the media add up to more than 5 MB
)

func errAuthenticate() apiError {
	return newAPIError(http.StatusUnauthorized, codeAuthenticate, "Authenticate")
}

func errNotFound(path string) apiError {
	return newAPIError(http.StatusNotFound, codeNotFound,
		fmt.Sprintf("The requested resource %s was not found", path))
}

func errBadRequest(code int, msg string) apiError {
	return newAPIError(http.StatusBadRequest, code, msg)
}
