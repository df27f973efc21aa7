// Package cobrowsertest is a test kit for the CoBrowser adapter: a private
// ejabberd instance (the real XMPP server), a fake of CoBrowser's public REST
// API, and a scripted agent that chats with visitors the way CoBrowser's
// agent side does. Everything binds 127.0.0.1; nothing is global.
package cobrowsertest
