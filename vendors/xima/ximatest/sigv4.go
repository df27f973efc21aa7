package ximatest

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// credentials are the SQS keys /chat/queue/auth hands out. Only the
// current set is accepted: rotation deletes the old key, as an IAM key
// rotation does.
type sqsCreds struct {
	accessKey string
	secretKey string
	issued    time.Time
}

func newCredentials(now time.Time) sqsCreds {
	const upper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	var b [16 + 40]byte
	rand.Read(b[:])
	ak := []byte("AKIA")
	for _, c := range b[:16] {
		ak = append(ak, upper[int(c)%len(upper)])
	}
	const secretChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	var sk []byte
	for _, c := range b[16:] {
		sk = append(sk, secretChars[int(c)%len(secretChars)])
	}
	return sqsCreds{accessKey: string(ak), secretKey: string(sk), issued: now}
}

// sigV4 is a parsed Authorization header.
type sigV4 struct {
	accessKey     string
	date          string // yyyymmdd of the scope
	region        string
	service       string
	signedHeaders []string
	signature     string
}

var errAuthHeader = errors.New("malformed AWS4-HMAC-SHA256 Authorization header")

// parseAuthorization parses
// "AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/sqs/aws4_request,
// SignedHeaders=host;x-amz-date, Signature=hex".
func parseAuthorization(h string) (sigV4, error) {
	rest, ok := strings.CutPrefix(h, "AWS4-HMAC-SHA256 ")
	if !ok {
		return sigV4{}, errAuthHeader
	}
	var v sigV4
	var cred string
	for part := range strings.SplitSeq(rest, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return sigV4{}, errAuthHeader
		}
		switch k {
		case "Credential":
			cred = val
		case "SignedHeaders":
			v.signedHeaders = strings.Split(val, ";")
		case "Signature":
			v.signature = val
		}
	}
	scope := strings.Split(cred, "/")
	if len(scope) != 5 || scope[4] != "aws4_request" || scope[0] == "" ||
		len(v.signedHeaders) == 0 || v.signature == "" {
		return sigV4{}, errAuthHeader
	}
	v.accessKey, v.date, v.region, v.service = scope[0], scope[1], scope[2], scope[3]
	return v, nil
}

// authenticate checks an SQS request's signature as AWS does: the access key
// must be the current one (else InvalidClientTokenId, what a deleted or
// rotated-out key gets), the scope must name the region and sqs, and the
// signature must match (else SignatureDoesNotMatch).
func (s *Server) authenticate(r *http.Request, body []byte, now time.Time) (string, *apiError) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", errMissingToken()
	}
	v, err := parseAuthorization(h)
	if err != nil {
		return "", errIncompleteSignature(err.Error())
	}
	s.mu.Lock()
	cur := s.creds
	ttl := s.cfg.CredentialTTL
	s.mu.Unlock()
	if v.accessKey != cur.accessKey || !now.Before(cur.issued.Add(ttl)) {
		return v.accessKey, errInvalidClientToken()
	}
	amzDate := r.Header.Get("X-Amz-Date")
	if v.region != s.cfg.Region || v.service != "sqs" || !strings.HasPrefix(amzDate, v.date) ||
		!slices.Contains(v.signedHeaders, "host") || !slices.Contains(v.signedHeaders, "x-amz-date") {
		return v.accessKey, errSignature()
	}
	want := signature(cur.secretKey, v, amzDate, canonicalRequest(r, v.signedHeaders, body))
	if !hmac.Equal([]byte(want), []byte(v.signature)) {
		return v.accessKey, errSignature()
	}
	return v.accessKey, nil
}

// canonicalRequest is SigV4's canonical form of r.
func canonicalRequest(r *http.Request, signed []string, body []byte) string {
	var b strings.Builder
	b.WriteString(r.Method + "\n")
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	b.WriteString(escapePath(path) + "\n")
	b.WriteString(canonicalQuery(r.URL.Query()) + "\n")
	for _, name := range signed {
		var vals []string
		switch name {
		case "host":
			vals = []string{r.Host}
		case "content-length":
			vals = []string{strconv.FormatInt(r.ContentLength, 10)}
		default:
			vals = r.Header.Values(name)
		}
		for i, v := range vals {
			vals[i] = strings.Join(strings.Fields(v), " ")
		}
		b.WriteString(name + ":" + strings.Join(vals, ",") + "\n")
	}
	b.WriteString("\n" + strings.Join(signed, ";") + "\n")
	sum := sha256.Sum256(body)
	b.WriteString(hex.EncodeToString(sum[:]))
	return b.String()
}

// escapePath escapes every byte but unreserved ones and '/', as SigV4 does
// for services other than S3 (an already escaped path is escaped again).
func escapePath(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '/' || unreserved(c) {
			b.WriteByte(c)
		} else {
			b.WriteString("%" + strings.ToUpper(hex.EncodeToString([]byte{c})))
		}
	}
	return b.String()
}

func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~'
}

func canonicalQuery(q url.Values) string {
	var pairs []string
	for k, vs := range q {
		for _, v := range vs {
			pairs = append(pairs, escapeQuery(k)+"="+escapeQuery(v))
		}
	}
	sort.Strings(pairs)
	return strings.Join(pairs, "&")
}

func escapeQuery(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if unreserved(s[i]) {
			b.WriteByte(s[i])
		} else {
			b.WriteString("%" + strings.ToUpper(hex.EncodeToString([]byte{s[i]})))
		}
	}
	return b.String()
}

func signature(secret string, v sigV4, amzDate, canonical string) string {
	sum := sha256.Sum256([]byte(canonical))
	scope := v.date + "/" + v.region + "/" + v.service + "/aws4_request"
	toSign := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
	k := hmacSHA256([]byte("AWS4"+secret), v.date)
	k = hmacSHA256(k, v.region)
	k = hmacSHA256(k, v.service)
	k = hmacSHA256(k, "aws4_request")
	return hex.EncodeToString(hmacSHA256(k, toSign))
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}
