package xima

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// creds is the installation's SQS credentials, from GET /chat/queue/auth.
// The document gives them no expiry and says they change over time: they
// are used for credentials_refresh (fetched again a fifth of that before),
// and fetched again at once when SQS refuses them.
type creds struct {
	cache *aws.CredentialsCache

	mu      sync.Mutex
	region  string
	lastErr error // of the newest fetch
	fetched bool
}

// credSource is the aws.CredentialsProvider the cache calls.
type credSource struct {
	api     *api
	refresh time.Duration
	now     func() time.Time
	c       *creds
}

func newCreds(a *api, refresh time.Duration, now func() time.Time) *creds {
	c := &creds{}
	src := &credSource{api: a, refresh: refresh, now: now, c: c}
	c.cache = aws.NewCredentialsCache(src, func(o *aws.CredentialsCacheOptions) {
		o.ExpiryWindow = refresh / 5
		o.ExpiryWindowJitterFrac = 0.5
	})
	return c
}

// Retrieve implements aws.CredentialsProvider.
func (s *credSource) Retrieve(ctx context.Context) (aws.Credentials, error) {
	got, err := s.api.credentials(ctx)
	s.c.mu.Lock()
	s.c.lastErr, s.c.fetched = err, true
	if err == nil && got.Region != "" {
		s.c.region = got.Region
	}
	s.c.mu.Unlock()
	if err != nil {
		return aws.Credentials{}, err
	}
	return aws.Credentials{AccessKeyID: got.AccessKey, SecretAccessKey: got.SecretKey,
		Source: "xima /chat/queue/auth", CanExpire: true, Expires: s.now().Add(s.refresh)}, nil
}

// current returns the access key id in use (fetching credentials if none
// are cached).
func (c *creds) current(ctx context.Context) (string, error) {
	cr, err := c.cache.Retrieve(ctx)
	return cr.AccessKeyID, err
}

// refused drops the cached credentials when they are still the ones SQS
// refused (key): many pollers failing at once cause one fetch, not many.
func (c *creds) refused(ctx context.Context, key string) {
	if cur, err := c.current(ctx); err == nil && cur == key {
		c.cache.Invalidate()
	}
}

// rotated drops the cached credentials when a fetch (the health probe's)
// shows Xima handing out others.
func (c *creds) rotated(ctx context.Context, key string) bool {
	if cur, err := c.current(ctx); err == nil && cur != key {
		c.cache.Invalidate()
		return true
	}
	return false
}

// state is the newest fetch's region and error; ok false before any.
func (c *creds) state() (region string, err error, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.region, c.lastErr, c.fetched
}

// isAuthError reports whether SQS refused the request's credentials (a
// rotation made them stale) rather than failing for another reason.
func isAuthError(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch",
			"InvalidSignatureException", "ExpiredToken", "ExpiredTokenException", "InvalidAccessKeyId",
			"IncompleteSignature", "IncompleteSignatureException", "MissingAuthenticationToken",
			"MissingAuthenticationTokenException", "AccessDenied", "AccessDeniedException",
			"InvalidSecurity", "RequestExpired", "KMS.AccessDeniedException":
			return true
		}
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		s := re.HTTPStatusCode()
		return s == http.StatusForbidden || s == http.StatusUnauthorized
	}
	return false
}

// isQueueGone reports whether SQS says the queue does not exist.
func isQueueGone(err error) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	code := ae.ErrorCode()
	return code == "AWS.SimpleQueueService.NonExistentQueue" || code == "QueueDoesNotExist" ||
		strings.HasSuffix(code, "NonExistentQueue")
}
