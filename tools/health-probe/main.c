/*
 * health-probe is the HTTP health check SwiftDeploy bind-mounts read-only into an app container and names as
 * its Docker healthcheck, so that an image with no shell, curl or Python (even FROM scratch) can be checked
 * over HTTP from inside its own network namespace.
 *
 *	health-probe URL [--host=NAME] [--timeout=SECONDS]
 *	health-probe http://127.0.0.1:3000/healthz --host=example.com --timeout=3
 *
 * It sends one GET (HTTP/1.1, Connection: close) and does not follow redirects. Exit status: 0 when the
 * status is 2xx or 3xx, 1 for any other status or no answer, 2 for bad arguments. It prints exactly one
 * line to stdout, which Docker keeps in the container's health log:
 *
 *	GET /healthz: 200
 *	GET /healthz: connection refused
 *	GET /healthz: timed out after 3 s
 *
 * No argument has a space in it: Podman 4.3 splits exec-form healthcheck arguments on spaces. It speaks
 * plain HTTP only. It is C, linked statically against musl by scripts/build-health-probe, so that the binary
 * is a few tens of KB (small enough to ship as a Docker Swarm config, at most 500 KB) and needs no file at
 * run time (a numeric address needs no /etc; a name is looked up with getaddrinfo, /etc/hosts then DNS).
 *
 * It was a Go program first, and keeps that program's behaviour byte for byte where a user can see it: the
 * response is read the way Go's bufio.Reader reads it (a 4 KB buffer, a line taken in 4 KB pieces, at most
 * 72 KB read in all), text from the server is quoted as Go's strconv.Quote does (with its table of printable
 * Unicode), and errno messages are Go's. Every buffer is bounds-checked: whatever a server sends, nothing is
 * written past the end of one.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define USAGE "usage: health-probe http://HOST[:PORT][/PATH] [--host=NAME] [--timeout=SECONDS]"
#define DEFAULT_TIMEOUT_NS 5000000000LL
#define DISCARD_LIMIT (64 << 10) /* at most this much of the response after the status line is read and dropped */
#define LINE_LIMIT (8 << 10)     /* longest status or header line accepted */
#define BUF_SIZE 4096            /* the read buffer, as Go's bufio.NewReaderSize(..., 4096) */
#define MAX_ADDRS 64             /* addresses of a name tried, at most (musl's getaddrinfo gives 48 at most) */

/* ---- strings that grow ------------------------------------------------------------------------------ */

struct str {
	char *p;
	size_t len, cap;
};

static void out_of_memory(void)
{
	static const char msg[] = "health-probe: out of memory\n";
	if (write(2, msg, sizeof msg - 1) < 0) {
		/* nothing more to say */
	}
	_exit(1);
}

static void put(struct str *s, const void *p, size_t n)
{
	if (n > SIZE_MAX / 2 - 1 - s->len)
		out_of_memory();
	if (s->len + n + 1 > s->cap) {
		size_t cap = s->cap ? s->cap : 64;
		while (cap < s->len + n + 1)
			cap *= 2;
		char *q = realloc(s->p, cap);
		if (!q)
			out_of_memory();
		s->p = q;
		s->cap = cap;
	}
	if (n)
		memcpy(s->p + s->len, p, n);
	s->len += n;
	s->p[s->len] = '\0';
}

static void put_z(struct str *s, const char *z) { put(s, z, strlen(z)); }

static void put_c(struct str *s, char c) { put(s, &c, 1); }

static void put_int(struct str *s, long long v)
{
	char digits[24];
	size_t i = sizeof digits;
	unsigned long long u = v < 0 ? 0 - (unsigned long long)v : (unsigned long long)v;
	do {
		digits[--i] = (char)('0' + u % 10);
		u /= 10;
	} while (u && i > 1);
	if (v < 0)
		digits[--i] = '-';
	put(s, digits + i, sizeof digits - i);
}

static void write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

/* ---- UTF-8 and quoting, as Go's unicode/utf8 and strconv ---------------------------------------------- */

static const char lowerhex[] = "0123456789abcdef";

/* utf8.DecodeRune: the rune at s[0:n] and its width; an invalid or short sequence is U+FFFD of width 1. */
static uint32_t decode_rune(const unsigned char *s, size_t n, size_t *width)
{
	*width = 1;
	if (n == 0)
		return 0xFFFD;
	unsigned char b = s[0];
	if (b < 0x80)
		return b;
	size_t need;
	unsigned char lo = 0x80, hi = 0xBF; /* the range of the second byte */
	uint32_t r;
	if (b >= 0xC2 && b <= 0xDF) {
		need = 2;
		r = b & 0x1F;
	} else if (b >= 0xE0 && b <= 0xEF) {
		need = 3;
		r = b & 0x0F;
		if (b == 0xE0)
			lo = 0xA0;
		else if (b == 0xED)
			hi = 0x9F;
	} else if (b >= 0xF0 && b <= 0xF4) {
		need = 4;
		r = b & 0x07;
		if (b == 0xF0)
			lo = 0x90;
		else if (b == 0xF4)
			hi = 0x8F;
	} else {
		return 0xFFFD;
	}
	if (n < need || s[1] < lo || s[1] > hi)
		return 0xFFFD;
	r = (r << 6) | (s[1] & 0x3F);
	for (size_t i = 2; i < need; i++) {
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0xFFFD;
		r = (r << 6) | (s[i] & 0x3F);
	}
	*width = need;
	return r;
}

static void put_rune(struct str *s, uint32_t r)
{
	char b[4];
	size_t n;
	if (r < 0x80) {
		b[0] = (char)r;
		n = 1;
	} else if (r < 0x800) {
		b[0] = (char)(0xC0 | (r >> 6));
		b[1] = (char)(0x80 | (r & 0x3F));
		n = 2;
	} else if (r < 0x10000) {
		b[0] = (char)(0xE0 | (r >> 12));
		b[1] = (char)(0x80 | ((r >> 6) & 0x3F));
		b[2] = (char)(0x80 | (r & 0x3F));
		n = 3;
	} else {
		b[0] = (char)(0xF0 | (r >> 18));
		b[1] = (char)(0x80 | ((r >> 12) & 0x3F));
		b[2] = (char)(0x80 | ((r >> 6) & 0x3F));
		b[3] = (char)(0x80 | (r & 0x3F));
		n = 4;
	}
	put(s, b, n);
}

/* strconv.IsPrint, with Go's tables, at the end of this file. */
static bool is_print(uint32_t r);

/* strconv.Quote: s between double quotes, with Go's escapes for what is not printable. */
static void put_quoted(struct str *out, const void *data, size_t n)
{
	const unsigned char *s = data;
	put_c(out, '"');
	while (n > 0) {
		size_t width = 1;
		uint32_t r = s[0];
		if (r >= 0x80)
			r = decode_rune(s, n, &width);
		if (width == 1 && r == 0xFFFD) {
			char esc[4] = {'\\', 'x', lowerhex[s[0] >> 4], lowerhex[s[0] & 0xF]};
			put(out, esc, sizeof esc);
		} else if (r == '"' || r == '\\') {
			put_c(out, '\\');
			put_c(out, (char)r);
		} else if (is_print(r)) {
			put(out, s, width);
		} else {
			switch (r) {
			case '\a': put_z(out, "\\a"); break;
			case '\b': put_z(out, "\\b"); break;
			case '\f': put_z(out, "\\f"); break;
			case '\n': put_z(out, "\\n"); break;
			case '\r': put_z(out, "\\r"); break;
			case '\t': put_z(out, "\\t"); break;
			case '\v': put_z(out, "\\v"); break;
			default:
				if (r < ' ' || r == 0x7F) {
					char esc[4] = {'\\', 'x', lowerhex[r >> 4], lowerhex[r & 0xF]};
					put(out, esc, sizeof esc);
				} else if (r < 0x10000) {
					char esc[6] = {'\\', 'u'};
					for (int k = 0; k < 4; k++)
						esc[2 + k] = lowerhex[(r >> (12 - 4 * k)) & 0xF];
					put(out, esc, sizeof esc);
				} else {
					char esc[10] = {'\\', 'U'};
					for (int k = 0; k < 8; k++)
						esc[2 + k] = lowerhex[(r >> (28 - 4 * k)) & 0xF];
					put(out, esc, sizeof esc);
				}
			}
		}
		s += width;
		n -= width;
	}
	put_c(out, '"');
}

static void put_quoted_z(struct str *out, const char *z) { put_quoted(out, z, strlen(z)); }

/* The output kept on one line whatever a server sent: control characters become spaces, and (as Go's
 * strings.Map does) a byte that is not valid UTF-8 becomes U+FFFD. */
static void put_one_line(struct str *out, const char *data, size_t n)
{
	const unsigned char *s = (const unsigned char *)data;
	while (n > 0) {
		size_t width = 1;
		if (s[0] < 0x80) {
			put_c(out, s[0] < ' ' || s[0] == 0x7F ? ' ' : (char)s[0]);
		} else if (decode_rune(s, n, &width) == 0xFFFD && width == 1) {
			put_rune(out, 0xFFFD);
		} else {
			put(out, s, width);
		}
		s += width;
		n -= width;
	}
}

/* Go's strings.TrimSpace: Unicode white space off both ends. */
static size_t space_prefix(const unsigned char *s, size_t n)
{
	static const char *const wide[] = {
		"\xc2\x85", "\xc2\xa0", "\xe1\x9a\x80", "\xe2\x80\xa8", "\xe2\x80\xa9", "\xe2\x80\xaf",
		"\xe2\x81\x9f", "\xe3\x80\x80",
	};
	if (n >= 1 && (s[0] == ' ' || (s[0] >= '\t' && s[0] <= '\r')))
		return 1;
	if (n >= 3 && s[0] == 0xE2 && s[1] == 0x80 && s[2] >= 0x80 && s[2] <= 0x8A) /* U+2000..U+200A */
		return 3;
	for (size_t i = 0; i < sizeof wide / sizeof wide[0]; i++) {
		size_t w = strlen(wide[i]);
		if (n >= w && memcmp(s, wide[i], w) == 0)
			return w;
	}
	return 0;
}

static size_t space_suffix(const unsigned char *s, size_t n)
{
	for (size_t w = 1; w <= 3 && w <= n; w++)
		if (space_prefix(s + n - w, w) == w)
			return w;
	return 0;
}

static void trim_space(const unsigned char **s, size_t *n)
{
	size_t w;
	while (*n > 0 && (w = space_prefix(*s, *n)) > 0) {
		*s += w;
		*n -= w;
	}
	while (*n > 0 && (w = space_suffix(*s, *n)) > 0)
		*n -= w;
}

/* s lower-cased as Go's strings.ToLower does it, as far as ASCII goes: the only runes outside ASCII that
 * lower-case into it are U+0130 (to i) and U+212A, the Kelvin sign (to k); other bytes are kept, so every
 * run of ASCII is what Go's would be. Returns the length written to out (at most n). */
static size_t lower_ascii(const unsigned char *s, size_t n, unsigned char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		if (n - i >= 2 && s[i] == 0xC4 && s[i + 1] == 0xB0) {
			out[o++] = 'i';
			i += 2;
		} else if (n - i >= 3 && s[i] == 0xE2 && s[i + 1] == 0x84 && s[i + 2] == 0xAA) {
			out[o++] = 'k';
			i += 3;
		} else {
			unsigned char c = s[i++];
			out[o++] = c >= 'A' && c <= 'Z' ? (unsigned char)(c + 'a' - 'A') : c;
		}
	}
	return o;
}

static bool printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7F)
			return false;
	return true;
}

/* ---- what went wrong ------------------------------------------------------------------------------------ */

enum failure_kind {
	F_NONE,
	F_TIMEOUT, /* the deadline passed */
	F_ERRNO,   /* a system call failed: errnum */
	F_EOF,     /* the server closed the connection, or the read limit was reached */
	F_TEXT,    /* text */
	F_NO_HOST, /* the URL's host is no known name */
	F_RESOLVE, /* the name could not be looked up: text */
};

struct failure {
	enum failure_kind kind;
	int errnum;
	const char *text; /* a static string, or one kept to the end */
};

static bool fail(struct failure *f, enum failure_kind kind, int errnum, const char *text)
{
	f->kind = kind;
	f->errnum = errnum;
	f->text = text;
	return false;
}

/* syscall.Errno.Error() of Go on Linux for the errors a socket can give. */
static const struct {
	int errnum;
	const char *text;
} errno_texts[] = {
	{EPERM, "operation not permitted"},
	{ENOENT, "no such file or directory"},
	{EINTR, "interrupted system call"},
	{EIO, "input/output error"},
	{ENXIO, "no such device or address"},
	{EBADF, "bad file descriptor"},
	{EAGAIN, "resource temporarily unavailable"},
	{ENOMEM, "cannot allocate memory"},
	{EACCES, "permission denied"},
	{EFAULT, "bad address"},
	{ENODEV, "no such device"},
	{EINVAL, "invalid argument"},
	{ENFILE, "too many open files in system"},
	{EMFILE, "too many open files"},
	{EPIPE, "broken pipe"},
	{ENOSR, "out of streams resources"},
	{ENONET, "machine is not on the network"},
	{EPROTO, "protocol error"},
	{ENOTSOCK, "socket operation on non-socket"},
	{EMSGSIZE, "message too long"},
	{EPROTOTYPE, "protocol wrong type for socket"},
	{ENOPROTOOPT, "protocol not available"},
	{EPROTONOSUPPORT, "protocol not supported"},
	{EOPNOTSUPP, "operation not supported"},
	{EAFNOSUPPORT, "address family not supported by protocol"},
	{EADDRINUSE, "address already in use"},
	{EADDRNOTAVAIL, "cannot assign requested address"},
	{ENETDOWN, "network is down"},
	{ENETUNREACH, "network is unreachable"},
	{ENETRESET, "network dropped connection on reset"},
	{ECONNABORTED, "software caused connection abort"},
	{ECONNRESET, "connection reset by peer"},
	{ENOBUFS, "no buffer space available"},
	{EISCONN, "transport endpoint is already connected"},
	{ENOTCONN, "transport endpoint is not connected"},
	{ESHUTDOWN, "cannot send after transport endpoint shutdown"},
	{ETIMEDOUT, "connection timed out"},
	{ECONNREFUSED, "connection refused"},
	{EHOSTDOWN, "host is down"},
	{EHOSTUNREACH, "no route to host"},
	{EALREADY, "operation already in progress"},
	{EINPROGRESS, "operation now in progress"},
};

/* ---- the command line ----------------------------------------------------------------------------------- */

struct probe {
	const char *name;    /* the URL's host, to look up and dial */
	const char *port;    /* the URL's port */
	const char *host;    /* Host header */
	const char *target;  /* request target: path and query */
	long long timeout;   /* nanoseconds */
	const char *seconds; /* the timeout as given, for the message */
};

static bool ascii_prefix_fold(const char *s, const char *prefix)
{
	for (; *prefix; s++, prefix++) {
		char c = *s >= 'A' && *s <= 'Z' ? (char)(*s + 'a' - 'A') : *s;
		if (c != *prefix)
			return false;
	}
	return true;
}

static bool is_digit(int c) { return c >= '0' && c <= '9'; }

static bool is_hex_digit(int c) { return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'); }

/* Go's strconv underscoreOK: underscores only between digits (or after a base prefix). */
static bool underscores_ok(const char *s, size_t n)
{
	char saw = '^';
	size_t i = 0;
	bool hex = false;
	if (n >= 1 && (s[0] == '-' || s[0] == '+'))
		i = 1;
	if (n - i >= 2 && s[i] == '0' && ((s[i + 1] | 0x20) == 'b' || (s[i + 1] | 0x20) == 'o' || (s[i + 1] | 0x20) == 'x')) {
		hex = (s[i + 1] | 0x20) == 'x';
		i += 2;
		saw = '0';
	}
	for (; i < n; i++) {
		if (is_digit(s[i]) || (hex && is_hex_digit(s[i]))) {
			saw = '0';
			continue;
		}
		if (s[i] == '_') {
			if (saw != '0')
				return false;
			saw = '_';
			continue;
		}
		if (saw == '_')
			return false;
		saw = '!';
	}
	return saw != '_';
}

/* strconv.ParseFloat(s, 64) for the finite numbers (decimal, or hexadecimal with a p exponent; underscores
 * between digits). Inf and NaN, which Go also parses, are refused here: no timeout may be either. */
static bool parse_float(const char *s, double *value)
{
	size_t n = strlen(s), i = 0;
	bool hex = false, underscores = false, digits = false, dot = false;
	if (i < n && (s[i] == '+' || s[i] == '-'))
		i++;
	if (i + 2 < n && s[i] == '0' && (s[i + 1] | 0x20) == 'x') {
		hex = true;
		i += 2;
	}
	for (; i < n; i++) {
		if (s[i] == '_') {
			underscores = true;
		} else if (s[i] == '.') {
			if (dot)
				break;
			dot = true;
		} else if (is_digit(s[i]) || (hex && is_hex_digit(s[i]))) {
			digits = true;
		} else {
			break;
		}
	}
	if (!digits)
		return false;
	if (i < n && (s[i] | 0x20) == (hex ? 'p' : 'e')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		if (i >= n || !is_digit(s[i]))
			return false;
		for (; i < n && (is_digit(s[i]) || s[i] == '_'); i++)
			if (s[i] == '_')
				underscores = true;
	} else if (hex) {
		return false;
	}
	if (i != n || (underscores && !underscores_ok(s, n)))
		return false;
	char *plain = malloc(n + 1); /* without the underscores, for strtod */
	if (!plain)
		out_of_memory();
	size_t k = 0;
	for (i = 0; i < n; i++)
		if (s[i] != '_')
			plain[k++] = s[i];
	plain[k] = '\0';
	*value = strtod(plain, NULL);
	free(plain);
	return true;
}

/* strconv.Atoi with 1 <= n <= 65535 and no sign. */
static bool port_ok(const char *port)
{
	if (!*port)
		return false;
	for (const char *c = port; *c; c++)
		if (!is_digit(*c))
			return false;
	while (*port == '0')
		port++;
	if (strlen(port) > 5)
		return false;
	long v = *port ? strtol(port, NULL, 10) : 0;
	return v >= 1 && v <= 65535;
}

static char *copy_n(const char *s, size_t n)
{
	char *c = malloc(n + 1);
	if (!c)
		out_of_memory();
	memcpy(c, s, n);
	c[n] = '\0';
	return c;
}

/* Sets name, port and target from http://HOST[:PORT][/PATH][?QUERY][#FRAGMENT]; *authority is HOST[:PORT]. */
static bool parse_url(struct probe *p, const char *raw, const char **authority, struct str *err)
{
	const char *why = NULL;
	const char *bad_port = NULL;
	if (strlen(raw) < 7 || !ascii_prefix_fold(raw, "http://")) {
		why = "not http:// (https is not supported)";
	} else if (!printable(raw)) {
		why = "spaces or control characters";
	} else {
		const char *rest = raw + 7;
		size_t rest_len = strcspn(rest, "#");
		size_t auth_len = strcspn(rest, "/?");
		char *auth = copy_n(rest, auth_len < rest_len ? auth_len : rest_len);
		if (auth_len < rest_len) {
			struct str target = {0};
			if (rest[auth_len] == '?')
				put_c(&target, '/');
			put(&target, rest + auth_len, rest_len - auth_len);
			p->target = target.p;
		} else {
			p->target = "/";
		}
		*authority = auth;
		char *host = copy_n(auth, strlen(auth));
		const char *port = "80";
		if (strchr(auth, '@')) {
			why = "user information is not supported";
		} else if (auth[0] == '[') { /* [IPv6]:port */
			char *end = strchr(host, ']');
			if (!end) {
				why = "no ] after the IPv6 address";
			} else {
				*end = '\0';
				memmove(host, host + 1, (size_t)(end - host));
				const char *after = auth + (end - host) + 1;
				if (*after) {
					if (*after != ':')
						why = "junk after ]";
					else
						port = after + 1;
				}
			}
		} else {
			char *colon = strrchr(host, ':');
			if (colon) {
				*colon = '\0';
				port = auth + (colon - host) + 1;
			}
		}
		if (!why && !*host)
			why = "no host";
		if (!why && !port_ok(port)) {
			why = "bad port ";
			bad_port = port;
		}
		p->name = host;
		p->port = port;
	}
	if (!why)
		return true;
	put_z(err, "bad URL ");
	put_quoted_z(err, raw);
	put_z(err, ": ");
	put_z(err, why);
	if (bad_port)
		put_quoted_z(err, bad_port);
	return false;
}

static bool parse_args(int argc, char **argv, struct probe *p, struct str *err)
{
	const char *raw = "";
	bool have_host = false, have_timeout = false;
	p->timeout = DEFAULT_TIMEOUT_NS;
	p->seconds = "5";
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
			write_all(1, USAGE "\n", sizeof USAGE);
			exit(0);
		} else if (!strncmp(arg, "--host=", 7)) {
			if (have_host) {
				put_z(err, "--host given twice");
				return false;
			}
			have_host = true;
			p->host = arg + 7;
			if (!*p->host || !printable(p->host)) {
				put_z(err, "bad --host value ");
				put_quoted_z(err, p->host);
				return false;
			}
		} else if (!strncmp(arg, "--timeout=", 10)) {
			if (have_timeout) {
				put_z(err, "--timeout given twice");
				return false;
			}
			have_timeout = true;
			p->seconds = arg + 10;
			double s = 0;
			if (!parse_float(p->seconds, &s) || !(s > 0 && s <= 3600)) {
				put_z(err, "bad --timeout value ");
				put_quoted_z(err, p->seconds);
				put_z(err, " (seconds, more than 0, at most 3600)");
				return false;
			}
			p->timeout = (long long)(s * 1e9);
		} else if (arg[0] == '-') {
			put_z(err, "unknown option ");
			put_quoted_z(err, arg);
			return false;
		} else if (*raw) {
			put_z(err, "more than one URL");
			return false;
		} else {
			raw = arg;
		}
	}
	if (!*raw) {
		put_z(err, "no URL");
		return false;
	}
	const char *authority = NULL;
	if (!parse_url(p, raw, &authority, err))
		return false;
	if (!have_host)
		p->host = authority;
	return true;
}

/* ---- time ---------------------------------------------------------------------------------------------- */

static long long deadline; /* of the whole probe, in CLOCK_MONOTONIC nanoseconds */

static long long now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* Waits until fd is ready for events, or fails with F_TIMEOUT at until. */
static bool wait_fd(int fd, short events, long long until, struct failure *f)
{
	for (;;) {
		long long left = until - now_ns();
		if (left <= 0)
			return fail(f, F_TIMEOUT, 0, NULL);
		struct timespec ts = {.tv_sec = left / 1000000000LL, .tv_nsec = left % 1000000000LL};
		struct pollfd pfd = {.fd = fd, .events = events};
		int r = ppoll(&pfd, 1, &ts, NULL);
		if (r > 0)
			return true;
		if (r < 0 && errno != EINTR)
			return fail(f, F_ERRNO, errno, NULL);
	}
}

/* The line to print when the deadline passes inside getaddrinfo, which cannot be given one. */
static struct str alarm_line;

static void on_alarm(int sig)
{
	(void)sig;
	write_all(1, alarm_line.p, alarm_line.len);
	_exit(1);
}

static void set_alarm(long long ns)
{
	struct itimerval t = {0};
	t.it_value.tv_sec = (time_t)(ns / 1000000000LL);
	t.it_value.tv_usec = (suseconds_t)(ns % 1000000000LL / 1000);
	if (ns > 0 && t.it_value.tv_sec == 0 && t.it_value.tv_usec == 0)
		t.it_value.tv_usec = 1;
	setitimer(ITIMER_REAL, &t, NULL);
}

/* ---- dialing -------------------------------------------------------------------------------------------- */

struct address {
	struct sockaddr_storage sa;
	socklen_t len;
};

/* Go's SplitHostPort of hostport (as net.JoinHostPort made it): NULL, or why Dial refuses it. */
static const char *split_host_port(const char *hostport)
{
	const char *colon = strrchr(hostport, ':');
	size_t j = 0, k = 0;
	if (!colon)
		return "missing port in address";
	if (hostport[0] == '[') {
		const char *end = strchr(hostport, ']');
		if (!end)
			return "missing ']' in address";
		if (end[1] == '\0')
			return "missing port in address";
		if (end + 1 != colon)
			return end[1] == ':' ? "too many colons in address" : "missing port in address";
		j = 1;
		k = (size_t)(end + 1 - hostport);
	} else if (memchr(hostport, ':', (size_t)(colon - hostport))) {
		return "too many colons in address";
	}
	if (strchr(hostport + j, '['))
		return "unexpected '[' in address";
	if (strchr(hostport + k, ']'))
		return "unexpected ']' in address";
	return NULL;
}

/* The interface index of an IPv6 zone, as Go finds it: by name, else the number it starts with, else 0. */
static uint32_t zone_index(const char *zone)
{
	unsigned int index = if_nametoindex(zone);
	if (index)
		return index;
	uint32_t n = 0;
	for (; is_digit(*zone); zone++) {
		n = n * 10 + (uint32_t)(*zone - '0');
		if (n >= 0xFFFFFF)
			return 0xFFFFFF;
	}
	return n;
}

/* An IP address as Go's netip.ParseAddr reads it (IPv4 dotted decimal; IPv6, with a %zone). */
static bool parse_ip(const char *s, uint16_t port, struct address *a)
{
	const char *first = strpbrk(s, ".:%");
	memset(a, 0, sizeof *a);
	if (!first || *first == '%')
		return false;
	if (*first == '.') {
		struct sockaddr_in *in = (struct sockaddr_in *)&a->sa;
		if (inet_pton(AF_INET, s, &in->sin_addr) != 1)
			return false;
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		a->len = sizeof *in;
		return true;
	}
	char ip[64];
	const char *zone = strchr(s, '%');
	size_t n = zone ? (size_t)(zone - s) : strlen(s);
	if (n >= sizeof ip || (zone && !zone[1]))
		return false;
	memcpy(ip, s, n);
	ip[n] = '\0';
	struct in6_addr in6;
	if (inet_pton(AF_INET6, ip, &in6) != 1)
		return false;
	if (IN6_IS_ADDR_V4MAPPED(&in6)) { /* Go dials an IPv4-mapped address over IPv4 */
		struct sockaddr_in *in = (struct sockaddr_in *)&a->sa;
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		memcpy(&in->sin_addr, &in6.s6_addr[12], 4);
		a->len = sizeof *in;
		return true;
	}
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->sa;
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(port);
	sin6->sin6_addr = in6;
	sin6->sin6_scope_id = zone ? zone_index(zone + 1) : 0;
	a->len = sizeof *sin6;
	return true;
}

/* The addresses of the URL's host, at most max of them; 0 on failure. */
static size_t resolve(const struct probe *p, struct address *addrs, size_t max, struct failure *f)
{
	uint16_t port = (uint16_t)strtol(p->port, NULL, 10);
	if (parse_ip(p->name, port, &addrs[0]))
		return 1;
	struct in_addr ignored;
	if (inet_aton(p->name, &ignored)) { /* 127.1, 0x7f.1, 2130706433: an address to musl, a name to Go */
		fail(f, F_NO_HOST, 0, NULL);
		return 0;
	}
	long long left = deadline - now_ns();
	if (left <= 0) {
		fail(f, F_TIMEOUT, 0, NULL);
		return 0;
	}
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_protocol = IPPROTO_TCP};
	struct addrinfo *res = NULL;
	struct sigaction sa = {.sa_handler = on_alarm};
	sigaction(SIGALRM, &sa, NULL);
	set_alarm(left);
	int rc = getaddrinfo(p->name, NULL, &hints, &res);
	set_alarm(0);
	if (rc != 0) {
		if (rc == EAI_NONAME
#ifdef EAI_NODATA
		    || rc == EAI_NODATA
#endif
		)
			fail(f, F_NO_HOST, 0, NULL);
		else if (rc == EAI_AGAIN || rc == EAI_FAIL)
			fail(f, F_RESOLVE, 0, "server misbehaving");
		else
			fail(f, F_RESOLVE, 0, gai_strerror(rc));
		return 0;
	}
	size_t n = 0;
	for (struct addrinfo *ai = res; ai && n < max; ai = ai->ai_next) {
		if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) || ai->ai_addrlen > sizeof addrs[n].sa)
			continue;
		memset(&addrs[n], 0, sizeof addrs[n]);
		memcpy(&addrs[n].sa, ai->ai_addr, ai->ai_addrlen);
		addrs[n].len = ai->ai_addrlen;
		if (ai->ai_family == AF_INET)
			((struct sockaddr_in *)&addrs[n].sa)->sin_port = htons(port);
		else
			((struct sockaddr_in6 *)&addrs[n].sa)->sin6_port = htons(port);
		n++;
	}
	freeaddrinfo(res);
	if (n == 0)
		fail(f, F_NO_HOST, 0, NULL);
	return n;
}

/* One connection attempt, given up at until. */
static int dial_one(const struct address *a, long long until, struct failure *f)
{
	int fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
	if (fd < 0) {
		fail(f, F_ERRNO, errno, NULL);
		return -1;
	}
	if (connect(fd, (const struct sockaddr *)&a->sa, a->len) == 0 || errno == EISCONN)
		return fd;
	if (errno != EINPROGRESS && errno != EALREADY && errno != EINTR) {
		fail(f, F_ERRNO, errno, NULL);
		close(fd);
		return -1;
	}
	for (;;) {
		if (!wait_fd(fd, POLLOUT, until, f))
			break;
		int err = 0;
		socklen_t len = sizeof err;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
			fail(f, F_ERRNO, errno, NULL);
			break;
		}
		if (err == EISCONN)
			return fd;
		if (err == 0) {
			struct sockaddr_storage peer;
			socklen_t peer_len = sizeof peer;
			if (getpeername(fd, (struct sockaddr *)&peer, &peer_len) == 0)
				return fd;
		} else if (err != EINPROGRESS && err != EALREADY && err != EINTR) {
			fail(f, F_ERRNO, err, NULL);
			break;
		}
	}
	close(fd);
	return -1;
}

/* Go's dialSerial: each address in turn, each given an equal share of the time left (at least 2 s). */
static int dial_serial(const struct address *addrs, size_t n, struct failure *first)
{
	for (size_t i = 0; i < n; i++) {
		long long now = now_ns();
		long long left = deadline - now;
		if (left <= 0)
			return fail(first, F_TIMEOUT, 0, NULL), -1;
		long long share = left / (long long)(n - i);
		if (share < 2000000000LL)
			share = left < 2000000000LL ? left : 2000000000LL;
		struct failure f = {0};
		int fd = dial_one(&addrs[i], now + share, &f);
		if (fd >= 0)
			return fd;
		if (first->kind == F_NONE)
			*first = f;
	}
	return -1;
}

static bool is_ipv4(const struct address *a) { return a->sa.ss_family == AF_INET; }

/* net.Dial("tcp", JoinHostPort(name, port)) with the deadline: the addresses of the first one's family
 * first, then the others (Go races those after 300 ms; here they follow); the first error is the one. */
static int dial(const struct probe *p, struct failure *f)
{
	struct str hostport = {0};
	bool colon = strchr(p->name, ':') != NULL;
	if (colon)
		put_c(&hostport, '[');
	put_z(&hostport, p->name);
	if (colon)
		put_c(&hostport, ']');
	put_c(&hostport, ':');
	put_z(&hostport, p->port);
	const char *why = split_host_port(hostport.p);
	if (why) {
		struct str text = {0};
		put_z(&text, "dial tcp: address ");
		put(&text, hostport.p, hostport.len);
		put_z(&text, ": ");
		put_z(&text, why);
		return fail(f, F_TEXT, 0, text.p), -1;
	}
	free(hostport.p);
	static struct address addrs[MAX_ADDRS], ordered[MAX_ADDRS];
	size_t n = resolve(p, addrs, MAX_ADDRS, f);
	if (n == 0)
		return -1;
	size_t primaries = 0, k = 0;
	for (size_t i = 0; i < n; i++)
		if (is_ipv4(&addrs[i]) == is_ipv4(&addrs[0]))
			ordered[k++] = addrs[i];
	primaries = k;
	for (size_t i = 0; i < n; i++)
		if (is_ipv4(&addrs[i]) != is_ipv4(&addrs[0]))
			ordered[k++] = addrs[i];
	struct failure first = {0};
	int fd = dial_serial(ordered, primaries, &first);
	if (fd < 0 && n > primaries) {
		struct failure ignored = {0};
		fd = dial_serial(ordered + primaries, n - primaries, first.kind == F_NONE ? &first : &ignored);
	}
	if (fd < 0)
		*f = first;
	return fd;
}

static bool send_all(int fd, const char *p, size_t n, struct failure *f)
{
	if (now_ns() >= deadline)
		return fail(f, F_TIMEOUT, 0, NULL);
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
		} else if (w < 0 && errno == EINTR) {
			continue;
		} else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (!wait_fd(fd, POLLOUT, deadline, f))
				return false;
		} else if (w < 0) {
			return fail(f, F_ERRNO, errno, NULL);
		} else {
			return fail(f, F_TEXT, 0, "unexpected EOF");
		}
	}
	return true;
}

/* ---- reading, as Go's bufio.Reader over io.LimitReader(conn, DISCARD_LIMIT+LINE_LIMIT) -------------- */

struct reader {
	int fd;
	long long limit; /* bytes the connection may still give */
	unsigned char buf[BUF_SIZE];
	size_t r, w; /* buf[r:w] is read and not yet taken */
	bool pending; /* a read failed: err is to be returned once buf[r:w] is taken */
	struct failure err;
};

/* One read of at most n bytes: > 0, or -1 with f set (F_EOF at the end or the limit). */
static ssize_t conn_read(struct reader *b, unsigned char *p, size_t n, struct failure *f)
{
	if (b->limit <= 0)
		return fail(f, F_EOF, 0, NULL), -1;
	if ((unsigned long long)n > (unsigned long long)b->limit)
		n = (size_t)b->limit;
	if (now_ns() >= deadline)
		return fail(f, F_TIMEOUT, 0, NULL), -1;
	for (;;) {
		ssize_t got = read(b->fd, p, n);
		if (got > 0) {
			b->limit -= got;
			return got;
		}
		if (got == 0)
			return fail(f, F_EOF, 0, NULL), -1;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return fail(f, F_ERRNO, errno, NULL), -1;
		if (!wait_fd(b->fd, POLLIN, deadline, f))
			return -1;
	}
}

/* bufio.Reader.fill: moves what is buffered to the front and reads once after it. */
static void fill(struct reader *b)
{
	if (b->r > 0) {
		memmove(b->buf, b->buf + b->r, b->w - b->r);
		b->w -= b->r;
		b->r = 0;
	}
	if (b->w >= BUF_SIZE)
		return; /* never: callers fill only a buffer with room */
	ssize_t got = conn_read(b, b->buf + b->w, BUF_SIZE - b->w, &b->err);
	if (got > 0)
		b->w += (size_t)got;
	else
		b->pending = true;
}

enum slice { SLICE_LINE, SLICE_FULL, SLICE_ERROR };

/* bufio.Reader.ReadSlice('\n'): *line points into the buffer, valid until the next read. */
static enum slice read_slice(struct reader *b, const unsigned char **line, size_t *len, struct failure *f)
{
	size_t searched = 0;
	for (;;) {
		const unsigned char *nl = NULL;
		if (b->w - b->r > searched)
			nl = memchr(b->buf + b->r + searched, '\n', b->w - b->r - searched);
		if (nl) {
			*line = b->buf + b->r;
			*len = (size_t)(nl - *line) + 1;
			b->r += *len;
			return SLICE_LINE;
		}
		if (b->pending) {
			*line = b->buf + b->r;
			*len = b->w - b->r;
			b->r = b->w;
			*f = b->err;
			b->pending = false;
			return SLICE_ERROR;
		}
		if (b->w - b->r >= BUF_SIZE) {
			*line = b->buf + b->r;
			*len = b->w - b->r;
			b->r = b->w;
			return SLICE_FULL;
		}
		searched = b->w - b->r;
		fill(b);
	}
}

/* bufio.Reader.ReadLine: a piece of a line without its CRLF (or LF); *more when the line goes on. */
static bool read_line_piece(struct reader *b, const unsigned char **line, size_t *len, bool *more,
                            struct failure *f)
{
	enum slice kind = read_slice(b, line, len, f);
	*more = false;
	if (kind == SLICE_FULL) {
		if (*len > 0 && (*line)[*len - 1] == '\r') { /* "\r\n" may straddle the buffer: keep the \r */
			b->r--;
			(*len)--;
		}
		*more = true;
		return true;
	}
	if (*len == 0)
		return kind != SLICE_ERROR;
	/* a line that ends at an error (or the end) is returned, and the error dropped */
	if ((*line)[*len - 1] == '\n') {
		(*len)--;
		if (*len > 0 && (*line)[*len - 1] == '\r')
			(*len)--;
	}
	return true;
}

/* The line last read; a whole one is at most LINE_LIMIT bytes, and a piece at most BUF_SIZE. */
static unsigned char line[LINE_LIMIT + BUF_SIZE];
static size_t line_len;

/* Reads one line without its CRLF (or LF) into line, at most LINE_LIMIT bytes. */
static bool read_line(struct reader *b, struct failure *f)
{
	line_len = 0;
	for (;;) {
		const unsigned char *piece;
		size_t n;
		bool more;
		if (!read_line_piece(b, &piece, &n, &more, f))
			return false;
		if (n > sizeof line - line_len) /* never: line_len <= LINE_LIMIT here and n <= BUF_SIZE */
			return fail(f, F_TEXT, 0, "response line longer than 8 KB");
		memcpy(line + line_len, piece, n);
		line_len += n;
		if (line_len > LINE_LIMIT)
			return fail(f, F_TEXT, 0, "response line longer than 8 KB");
		if (!more)
			return true;
	}
}

/* Drops n bytes of the response (n < 0: up to the end), as io.CopyN(io.Discard, r, n). */
static bool skip(struct reader *b, long long n, struct failure *f)
{
	while (n != 0) {
		if (b->r == b->w) {
			if (b->pending) {
				*f = b->err;
				b->pending = false;
				return false;
			}
			b->r = b->w = 0;
			ssize_t got = conn_read(b, b->buf, BUF_SIZE, f);
			if (got < 0)
				return false;
			b->w = (size_t)got;
		}
		size_t take = b->w - b->r;
		if (n > 0 && (unsigned long long)n < take)
			take = (size_t)n;
		b->r += take;
		if (n > 0)
			n -= (long long)take;
	}
	return true;
}

/* The code of "HTTP/1.1 200 OK", or -1. */
static int parse_status_line(const unsigned char *l, size_t n)
{
	if (n < 12 || memcmp(l, "HTTP/1.", 7) != 0 || l[8] != ' ' || (n > 12 && l[12] != ' '))
		return -1;
	if (!is_digit(l[9]) || !is_digit(l[10]) || !is_digit(l[11]))
		return -1;
	int code = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
	return code >= 100 ? code : -1;
}

/* What discard needs of the headers; the last of each name counts, as in Go's map of them. */
struct headers {
	bool transfer_encoding, chunked;
	bool content_length, length_ok;
	long long length;
};

static unsigned char lowered[LINE_LIMIT + BUF_SIZE];

static bool lower_equals(const unsigned char *s, size_t n, const char *want)
{
	size_t len = lower_ascii(s, n, lowered);
	return len == strlen(want) && memcmp(lowered, want, len) == 0;
}

/* strconv.ParseInt(s, 10, 64) as far as discard goes: true with a length >= 0 (a sign is allowed). */
static bool parse_length(const unsigned char *s, size_t n, long long *value)
{
	bool negative = false;
	size_t i = 0;
	if (n > 0 && (s[0] == '+' || s[0] == '-')) {
		negative = s[0] == '-';
		i = 1;
	}
	if (i == n)
		return false;
	unsigned long long v = 0;
	for (; i < n; i++) {
		if (!is_digit(s[i]))
			return false;
		if (v > (9223372036854775807ULL - (unsigned)(s[i] - '0')) / 10)
			return false; /* out of range (or negative, which is refused below anyway) */
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (negative && v != 0)
		return false;
	*value = (long long)v;
	return true;
}

/* strconv.ParseUint(s, 16, 63) */
static bool parse_chunk_size(const unsigned char *s, size_t n, unsigned long long *value)
{
	unsigned long long v = 0;
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		int c = s[i], d;
		if (is_digit(c))
			d = c - '0';
		else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
			d = (c | 0x20) - 'a' + 10;
		else
			return false;
		if (v > (0x7FFFFFFFFFFFFFFFULL - (unsigned)d) / 16)
			return false;
		v = v * 16 + (unsigned)d;
	}
	*value = v;
	return true;
}

/* Reads header lines up to the empty line, noting in h (when given) what discard needs. */
static bool read_headers(struct reader *b, struct headers *h, struct failure *f)
{
	for (;;) {
		if (!read_line(b, f))
			return false;
		if (line_len == 0)
			return true;
		const unsigned char *colon = h ? memchr(line, ':', line_len) : NULL;
		if (!colon)
			continue;
		const unsigned char *name = line, *value = colon + 1;
		size_t name_len = (size_t)(colon - line), value_len = line_len - name_len - 1;
		trim_space(&name, &name_len);
		trim_space(&value, &value_len);
		if (lower_equals(name, name_len, "transfer-encoding")) {
			size_t len = lower_ascii(value, value_len, lowered);
			h->transfer_encoding = true;
			h->chunked = memmem(lowered, len, "chunked", 7) != NULL;
		} else if (lower_equals(name, name_len, "content-length")) {
			h->content_length = true;
			h->length_ok = parse_length(value, value_len, &h->length);
		}
	}
}

/* Reads and drops the rest of the response, at most DISCARD_LIMIT bytes (the reader is limited), so that
 * closing the connection does not reset it under a server still sending. Errors do not matter here. */
static void discard(struct reader *b, int status)
{
	struct headers h = {0};
	struct failure ignored = {0};
	if (!read_headers(b, &h, &ignored) || status == 204 || status == 304)
		return;
	if (h.transfer_encoding && h.chunked) {
		for (;;) {
			if (!read_line(b, &ignored))
				return;
			const unsigned char *size_text = line;
			const unsigned char *semicolon = memchr(line, ';', line_len);
			size_t n = semicolon ? (size_t)(semicolon - line) : line_len;
			unsigned long long size;
			trim_space(&size_text, &n);
			if (!parse_chunk_size(size_text, n, &size))
				return;
			if (size == 0) {
				read_headers(b, NULL, &ignored); /* trailers */
				return;
			}
			/* Go copies int64(size)+2 bytes: a size so large that this wraps negative copies none */
			if (size > 0x7FFFFFFFFFFFFFFFULL - 2)
				continue;
			if (!skip(b, (long long)size + 2, &ignored))
				return;
		}
	}
	if (h.content_length) {
		if (h.length_ok)
			skip(b, h.length, &ignored);
		return;
	}
	skip(b, -1, &ignored); /* delimited by the server closing the connection */
}

/* ---- the probe ------------------------------------------------------------------------------------------ */

/* Sends the request and returns the status code of the final (non-1xx) response, or -1 with f set. */
static int get(const struct probe *p, struct failure *f)
{
	deadline = now_ns() + p->timeout;
	int fd = dial(p, f);
	if (fd < 0)
		return -1;
	struct str request = {0};
	put_z(&request, "GET ");
	put_z(&request, p->target);
	put_z(&request, " HTTP/1.1\r\nHost: ");
	put_z(&request, p->host);
	put_z(&request, "\r\nUser-Agent: swiftdeploy-health\r\nAccept: */*\r\nConnection: close\r\n\r\n");
	int status = -1;
	static struct reader b;
	b.fd = fd;
	b.limit = DISCARD_LIMIT + LINE_LIMIT;
	if (!send_all(fd, request.p, request.len, f))
		goto done;
	for (;;) {
		if (!read_line(&b, f)) {
			if (f->kind == F_EOF)
				fail(f, F_TEXT, 0, "connection closed without a response");
			goto done;
		}
		int code = parse_status_line(line, line_len);
		if (code < 0) {
			struct str text = {0};
			put_z(&text, "not an HTTP response: ");
			if (line_len > 40) { /* truncate(line, 40) */
				memcpy(lowered, line, 40);
				memcpy(lowered + 40, "...", 3);
				put_quoted(&text, lowered, 43);
			} else {
				put_quoted(&text, line, line_len);
			}
			fail(f, F_TEXT, 0, text.p);
			goto done;
		}
		if (code >= 100 && code <= 199 && code != 101) { /* informational: a final response follows */
			if (!read_headers(&b, NULL, f))
				goto done;
			continue;
		}
		discard(&b, code);
		status = code;
		goto done;
	}
done:
	free(request.p);
	close(fd);
	return status;
}

/* The short text after "GET /path: " for a failure of get. */
static void put_failure(struct str *out, const struct probe *p, const struct failure *f)
{
	switch (f->kind) {
	case F_ERRNO:
		if (f->errnum == ETIMEDOUT || f->errnum == EAGAIN || f->errnum == EWOULDBLOCK)
			goto timeout;
		for (size_t i = 0; i < sizeof errno_texts / sizeof errno_texts[0]; i++) {
			if (errno_texts[i].errnum == f->errnum) {
				put_z(out, errno_texts[i].text);
				return;
			}
		}
		put_z(out, "errno ");
		put_int(out, f->errnum);
		return;
	case F_NONE:
	case F_TIMEOUT:
	timeout:
		put_z(out, "timed out after ");
		put_z(out, p->seconds);
		put_z(out, " s");
		return;
	case F_NO_HOST:
		put_z(out, "no such host ");
		put_z(out, p->name);
		return;
	case F_RESOLVE:
		put_z(out, "cannot resolve ");
		put_z(out, p->name);
		put_z(out, ": ");
		put_z(out, f->text);
		return;
	case F_EOF:
		put_z(out, "EOF");
		return;
	case F_TEXT: {
		size_t n = strlen(f->text);
		put(out, f->text, n > 200 ? 200 : n);
		if (n > 200)
			put_z(out, "...");
		return;
	}
	}
}

/* "GET /path: " and what, on one line. */
static void put_result(struct str *out, const struct probe *p, const char *what, size_t n)
{
	struct str s = {0};
	put_z(&s, "GET ");
	put_z(&s, p->target);
	put_z(&s, ": ");
	put(&s, what, n);
	put_one_line(out, s.p, s.len);
	put_c(out, '\n');
	free(s.p);
}

int main(int argc, char **argv)
{
	struct probe p = {0};
	struct str err = {0};
	if (!parse_args(argc, argv, &p, &err)) {
		struct str msg = {0};
		put_z(&msg, "health-probe: ");
		put(&msg, err.p, err.len);
		put_z(&msg, "; " USAGE "\n");
		write_all(2, msg.p, msg.len);
		return 2;
	}
	struct failure timed_out = {.kind = F_TIMEOUT};
	struct str what = {0};
	put_failure(&what, &p, &timed_out);
	put_result(&alarm_line, &p, what.p, what.len);

	struct failure f = {0};
	int status = get(&p, &f);
	what.len = 0;
	if (status < 0)
		put_failure(&what, &p, &f);
	else
		put_int(&what, status);
	struct str out = {0};
	put_result(&out, &p, what.p, what.len);
	write_all(1, out.p, out.len);
	return status >= 200 && status <= 399 ? 0 : 1;
}

/* ---- strconv.IsPrint: Go's tables of printable runes (strconv/isprint.go of Go 1.26, Unicode 15.0.0) ---- */

/* Pairs of rune ranges that are printable, below 0x10000 and above it, and the runes in them that are not
 * (isNotPrint32 holds rune - 0x10000). */
static const uint16_t print16[] = {
	0x0020, 0x007e, 0x00a1, 0x0377, 0x037a, 0x037f, 0x0384, 0x0556, 0x0559, 0x058a, 0x058d, 0x05c7,
	0x05d0, 0x05ea, 0x05ef, 0x05f4, 0x0606, 0x070d, 0x0710, 0x074a, 0x074d, 0x07b1, 0x07c0, 0x07fa,
	0x07fd, 0x082d, 0x0830, 0x085b, 0x085e, 0x086a, 0x0870, 0x088e, 0x0898, 0x098c, 0x098f, 0x0990,
	0x0993, 0x09b2, 0x09b6, 0x09b9, 0x09bc, 0x09c4, 0x09c7, 0x09c8, 0x09cb, 0x09ce, 0x09d7, 0x09d7,
	0x09dc, 0x09e3, 0x09e6, 0x09fe, 0x0a01, 0x0a0a, 0x0a0f, 0x0a10, 0x0a13, 0x0a39, 0x0a3c, 0x0a42,
	0x0a47, 0x0a48, 0x0a4b, 0x0a4d, 0x0a51, 0x0a51, 0x0a59, 0x0a5e, 0x0a66, 0x0a76, 0x0a81, 0x0ab9,
	0x0abc, 0x0acd, 0x0ad0, 0x0ad0, 0x0ae0, 0x0ae3, 0x0ae6, 0x0af1, 0x0af9, 0x0b0c, 0x0b0f, 0x0b10,
	0x0b13, 0x0b39, 0x0b3c, 0x0b44, 0x0b47, 0x0b48, 0x0b4b, 0x0b4d, 0x0b55, 0x0b57, 0x0b5c, 0x0b63,
	0x0b66, 0x0b77, 0x0b82, 0x0b8a, 0x0b8e, 0x0b95, 0x0b99, 0x0b9f, 0x0ba3, 0x0ba4, 0x0ba8, 0x0baa,
	0x0bae, 0x0bb9, 0x0bbe, 0x0bc2, 0x0bc6, 0x0bcd, 0x0bd0, 0x0bd0, 0x0bd7, 0x0bd7, 0x0be6, 0x0bfa,
	0x0c00, 0x0c39, 0x0c3c, 0x0c4d, 0x0c55, 0x0c5a, 0x0c5d, 0x0c5d, 0x0c60, 0x0c63, 0x0c66, 0x0c6f,
	0x0c77, 0x0cb9, 0x0cbc, 0x0ccd, 0x0cd5, 0x0cd6, 0x0cdd, 0x0ce3, 0x0ce6, 0x0cf3, 0x0d00, 0x0d4f,
	0x0d54, 0x0d63, 0x0d66, 0x0d96, 0x0d9a, 0x0dbd, 0x0dc0, 0x0dc6, 0x0dca, 0x0dca, 0x0dcf, 0x0ddf,
	0x0de6, 0x0def, 0x0df2, 0x0df4, 0x0e01, 0x0e3a, 0x0e3f, 0x0e5b, 0x0e81, 0x0ebd, 0x0ec0, 0x0ed9,
	0x0edc, 0x0edf, 0x0f00, 0x0f6c, 0x0f71, 0x0fda, 0x1000, 0x10c7, 0x10cd, 0x10cd, 0x10d0, 0x124d,
	0x1250, 0x125d, 0x1260, 0x128d, 0x1290, 0x12b5, 0x12b8, 0x12c5, 0x12c8, 0x1315, 0x1318, 0x135a,
	0x135d, 0x137c, 0x1380, 0x1399, 0x13a0, 0x13f5, 0x13f8, 0x13fd, 0x1400, 0x169c, 0x16a0, 0x16f8,
	0x1700, 0x1715, 0x171f, 0x1736, 0x1740, 0x1753, 0x1760, 0x1773, 0x1780, 0x17dd, 0x17e0, 0x17e9,
	0x17f0, 0x17f9, 0x1800, 0x1819, 0x1820, 0x1878, 0x1880, 0x18aa, 0x18b0, 0x18f5, 0x1900, 0x192b,
	0x1930, 0x193b, 0x1940, 0x1940, 0x1944, 0x196d, 0x1970, 0x1974, 0x1980, 0x19ab, 0x19b0, 0x19c9,
	0x19d0, 0x19da, 0x19de, 0x1a1b, 0x1a1e, 0x1a7c, 0x1a7f, 0x1a89, 0x1a90, 0x1a99, 0x1aa0, 0x1aad,
	0x1ab0, 0x1ace, 0x1b00, 0x1b4c, 0x1b50, 0x1bf3, 0x1bfc, 0x1c37, 0x1c3b, 0x1c49, 0x1c4d, 0x1c88,
	0x1c90, 0x1cba, 0x1cbd, 0x1cc7, 0x1cd0, 0x1cfa, 0x1d00, 0x1f15, 0x1f18, 0x1f1d, 0x1f20, 0x1f45,
	0x1f48, 0x1f4d, 0x1f50, 0x1f7d, 0x1f80, 0x1fd3, 0x1fd6, 0x1fef, 0x1ff2, 0x1ffe, 0x2010, 0x2027,
	0x2030, 0x205e, 0x2070, 0x2071, 0x2074, 0x209c, 0x20a0, 0x20c0, 0x20d0, 0x20f0, 0x2100, 0x218b,
	0x2190, 0x2426, 0x2440, 0x244a, 0x2460, 0x2b73, 0x2b76, 0x2cf3, 0x2cf9, 0x2d27, 0x2d2d, 0x2d2d,
	0x2d30, 0x2d67, 0x2d6f, 0x2d70, 0x2d7f, 0x2d96, 0x2da0, 0x2e5d, 0x2e80, 0x2ef3, 0x2f00, 0x2fd5,
	0x2ff0, 0x2ffb, 0x3001, 0x3096, 0x3099, 0x30ff, 0x3105, 0x31e3, 0x31f0, 0xa48c, 0xa490, 0xa4c6,
	0xa4d0, 0xa62b, 0xa640, 0xa6f7, 0xa700, 0xa7ca, 0xa7d0, 0xa7d9, 0xa7f2, 0xa82c, 0xa830, 0xa839,
	0xa840, 0xa877, 0xa880, 0xa8c5, 0xa8ce, 0xa8d9, 0xa8e0, 0xa953, 0xa95f, 0xa97c, 0xa980, 0xa9d9,
	0xa9de, 0xaa36, 0xaa40, 0xaa4d, 0xaa50, 0xaa59, 0xaa5c, 0xaac2, 0xaadb, 0xaaf6, 0xab01, 0xab06,
	0xab09, 0xab0e, 0xab11, 0xab16, 0xab20, 0xab6b, 0xab70, 0xabed, 0xabf0, 0xabf9, 0xac00, 0xd7a3,
	0xd7b0, 0xd7c6, 0xd7cb, 0xd7fb, 0xf900, 0xfa6d, 0xfa70, 0xfad9, 0xfb00, 0xfb06, 0xfb13, 0xfb17,
	0xfb1d, 0xfbc2, 0xfbd3, 0xfd8f, 0xfd92, 0xfdc7, 0xfdcf, 0xfdcf, 0xfdf0, 0xfe19, 0xfe20, 0xfe6b,
	0xfe70, 0xfefc, 0xff01, 0xffbe, 0xffc2, 0xffc7, 0xffca, 0xffcf, 0xffd2, 0xffd7, 0xffda, 0xffdc,
	0xffe0, 0xffee, 0xfffc, 0xfffd,
};
static const uint16_t not_print16[] = {
	0x00ad, 0x038b, 0x038d, 0x03a2, 0x0530, 0x0590, 0x061c, 0x06dd, 0x083f, 0x085f, 0x08e2, 0x0984,
	0x09a9, 0x09b1, 0x09de, 0x0a04, 0x0a29, 0x0a31, 0x0a34, 0x0a37, 0x0a3d, 0x0a5d, 0x0a84, 0x0a8e,
	0x0a92, 0x0aa9, 0x0ab1, 0x0ab4, 0x0ac6, 0x0aca, 0x0b00, 0x0b04, 0x0b29, 0x0b31, 0x0b34, 0x0b5e,
	0x0b84, 0x0b91, 0x0b9b, 0x0b9d, 0x0bc9, 0x0c0d, 0x0c11, 0x0c29, 0x0c45, 0x0c49, 0x0c57, 0x0c8d,
	0x0c91, 0x0ca9, 0x0cb4, 0x0cc5, 0x0cc9, 0x0cdf, 0x0cf0, 0x0d0d, 0x0d11, 0x0d45, 0x0d49, 0x0d80,
	0x0d84, 0x0db2, 0x0dbc, 0x0dd5, 0x0dd7, 0x0e83, 0x0e85, 0x0e8b, 0x0ea4, 0x0ea6, 0x0ec5, 0x0ec7,
	0x0ecf, 0x0f48, 0x0f98, 0x0fbd, 0x0fcd, 0x10c6, 0x1249, 0x1257, 0x1259, 0x1289, 0x12b1, 0x12bf,
	0x12c1, 0x12d7, 0x1311, 0x1680, 0x176d, 0x1771, 0x180e, 0x191f, 0x1a5f, 0x1b7f, 0x1f58, 0x1f5a,
	0x1f5c, 0x1f5e, 0x1fb5, 0x1fc5, 0x1fdc, 0x1ff5, 0x208f, 0x2b96, 0x2d26, 0x2da7, 0x2daf, 0x2db7,
	0x2dbf, 0x2dc7, 0x2dcf, 0x2dd7, 0x2ddf, 0x2e9a, 0x3040, 0x3130, 0x318f, 0x321f, 0xa7d2, 0xa7d4,
	0xa9ce, 0xa9ff, 0xab27, 0xab2f, 0xfb37, 0xfb3d, 0xfb3f, 0xfb42, 0xfb45, 0xfe53, 0xfe67, 0xfe75,
	0xffe7,
};
static const uint32_t print32[] = {
	0x010000, 0x01004d, 0x010050, 0x01005d, 0x010080, 0x0100fa, 0x010100, 0x010102,
	0x010107, 0x010133, 0x010137, 0x01019c, 0x0101a0, 0x0101a0, 0x0101d0, 0x0101fd,
	0x010280, 0x01029c, 0x0102a0, 0x0102d0, 0x0102e0, 0x0102fb, 0x010300, 0x010323,
	0x01032d, 0x01034a, 0x010350, 0x01037a, 0x010380, 0x0103c3, 0x0103c8, 0x0103d5,
	0x010400, 0x01049d, 0x0104a0, 0x0104a9, 0x0104b0, 0x0104d3, 0x0104d8, 0x0104fb,
	0x010500, 0x010527, 0x010530, 0x010563, 0x01056f, 0x0105bc, 0x010600, 0x010736,
	0x010740, 0x010755, 0x010760, 0x010767, 0x010780, 0x0107ba, 0x010800, 0x010805,
	0x010808, 0x010838, 0x01083c, 0x01083c, 0x01083f, 0x01089e, 0x0108a7, 0x0108af,
	0x0108e0, 0x0108f5, 0x0108fb, 0x01091b, 0x01091f, 0x010939, 0x01093f, 0x01093f,
	0x010980, 0x0109b7, 0x0109bc, 0x0109cf, 0x0109d2, 0x010a06, 0x010a0c, 0x010a35,
	0x010a38, 0x010a3a, 0x010a3f, 0x010a48, 0x010a50, 0x010a58, 0x010a60, 0x010a9f,
	0x010ac0, 0x010ae6, 0x010aeb, 0x010af6, 0x010b00, 0x010b35, 0x010b39, 0x010b55,
	0x010b58, 0x010b72, 0x010b78, 0x010b91, 0x010b99, 0x010b9c, 0x010ba9, 0x010baf,
	0x010c00, 0x010c48, 0x010c80, 0x010cb2, 0x010cc0, 0x010cf2, 0x010cfa, 0x010d27,
	0x010d30, 0x010d39, 0x010e60, 0x010ead, 0x010eb0, 0x010eb1, 0x010efd, 0x010f27,
	0x010f30, 0x010f59, 0x010f70, 0x010f89, 0x010fb0, 0x010fcb, 0x010fe0, 0x010ff6,
	0x011000, 0x01104d, 0x011052, 0x011075, 0x01107f, 0x0110c2, 0x0110d0, 0x0110e8,
	0x0110f0, 0x0110f9, 0x011100, 0x011147, 0x011150, 0x011176, 0x011180, 0x0111f4,
	0x011200, 0x011241, 0x011280, 0x0112a9, 0x0112b0, 0x0112ea, 0x0112f0, 0x0112f9,
	0x011300, 0x01130c, 0x01130f, 0x011310, 0x011313, 0x011344, 0x011347, 0x011348,
	0x01134b, 0x01134d, 0x011350, 0x011350, 0x011357, 0x011357, 0x01135d, 0x011363,
	0x011366, 0x01136c, 0x011370, 0x011374, 0x011400, 0x011461, 0x011480, 0x0114c7,
	0x0114d0, 0x0114d9, 0x011580, 0x0115b5, 0x0115b8, 0x0115dd, 0x011600, 0x011644,
	0x011650, 0x011659, 0x011660, 0x01166c, 0x011680, 0x0116b9, 0x0116c0, 0x0116c9,
	0x011700, 0x01171a, 0x01171d, 0x01172b, 0x011730, 0x011746, 0x011800, 0x01183b,
	0x0118a0, 0x0118f2, 0x0118ff, 0x011906, 0x011909, 0x011909, 0x01190c, 0x011938,
	0x01193b, 0x011946, 0x011950, 0x011959, 0x0119a0, 0x0119a7, 0x0119aa, 0x0119d7,
	0x0119da, 0x0119e4, 0x011a00, 0x011a47, 0x011a50, 0x011aa2, 0x011ab0, 0x011af8,
	0x011b00, 0x011b09, 0x011c00, 0x011c45, 0x011c50, 0x011c6c, 0x011c70, 0x011c8f,
	0x011c92, 0x011cb6, 0x011d00, 0x011d36, 0x011d3a, 0x011d47, 0x011d50, 0x011d59,
	0x011d60, 0x011d98, 0x011da0, 0x011da9, 0x011ee0, 0x011ef8, 0x011f00, 0x011f3a,
	0x011f3e, 0x011f59, 0x011fb0, 0x011fb0, 0x011fc0, 0x011ff1, 0x011fff, 0x012399,
	0x012400, 0x012474, 0x012480, 0x012543, 0x012f90, 0x012ff2, 0x013000, 0x01342f,
	0x013440, 0x013455, 0x014400, 0x014646, 0x016800, 0x016a38, 0x016a40, 0x016a69,
	0x016a6e, 0x016ac9, 0x016ad0, 0x016aed, 0x016af0, 0x016af5, 0x016b00, 0x016b45,
	0x016b50, 0x016b77, 0x016b7d, 0x016b8f, 0x016e40, 0x016e9a, 0x016f00, 0x016f4a,
	0x016f4f, 0x016f87, 0x016f8f, 0x016f9f, 0x016fe0, 0x016fe4, 0x016ff0, 0x016ff1,
	0x017000, 0x0187f7, 0x018800, 0x018cd5, 0x018d00, 0x018d08, 0x01aff0, 0x01b122,
	0x01b132, 0x01b132, 0x01b150, 0x01b152, 0x01b155, 0x01b155, 0x01b164, 0x01b167,
	0x01b170, 0x01b2fb, 0x01bc00, 0x01bc6a, 0x01bc70, 0x01bc7c, 0x01bc80, 0x01bc88,
	0x01bc90, 0x01bc99, 0x01bc9c, 0x01bc9f, 0x01cf00, 0x01cf2d, 0x01cf30, 0x01cf46,
	0x01cf50, 0x01cfc3, 0x01d000, 0x01d0f5, 0x01d100, 0x01d126, 0x01d129, 0x01d172,
	0x01d17b, 0x01d1ea, 0x01d200, 0x01d245, 0x01d2c0, 0x01d2d3, 0x01d2e0, 0x01d2f3,
	0x01d300, 0x01d356, 0x01d360, 0x01d378, 0x01d400, 0x01d49f, 0x01d4a2, 0x01d4a2,
	0x01d4a5, 0x01d4a6, 0x01d4a9, 0x01d50a, 0x01d50d, 0x01d546, 0x01d54a, 0x01d6a5,
	0x01d6a8, 0x01d7cb, 0x01d7ce, 0x01da8b, 0x01da9b, 0x01daaf, 0x01df00, 0x01df1e,
	0x01df25, 0x01df2a, 0x01e000, 0x01e018, 0x01e01b, 0x01e02a, 0x01e030, 0x01e06d,
	0x01e08f, 0x01e08f, 0x01e100, 0x01e12c, 0x01e130, 0x01e13d, 0x01e140, 0x01e149,
	0x01e14e, 0x01e14f, 0x01e290, 0x01e2ae, 0x01e2c0, 0x01e2f9, 0x01e2ff, 0x01e2ff,
	0x01e4d0, 0x01e4f9, 0x01e7e0, 0x01e8c4, 0x01e8c7, 0x01e8d6, 0x01e900, 0x01e94b,
	0x01e950, 0x01e959, 0x01e95e, 0x01e95f, 0x01ec71, 0x01ecb4, 0x01ed01, 0x01ed3d,
	0x01ee00, 0x01ee24, 0x01ee27, 0x01ee3b, 0x01ee42, 0x01ee42, 0x01ee47, 0x01ee54,
	0x01ee57, 0x01ee64, 0x01ee67, 0x01ee9b, 0x01eea1, 0x01eebb, 0x01eef0, 0x01eef1,
	0x01f000, 0x01f02b, 0x01f030, 0x01f093, 0x01f0a0, 0x01f0ae, 0x01f0b1, 0x01f0f5,
	0x01f100, 0x01f1ad, 0x01f1e6, 0x01f202, 0x01f210, 0x01f23b, 0x01f240, 0x01f248,
	0x01f250, 0x01f251, 0x01f260, 0x01f265, 0x01f300, 0x01f6d7, 0x01f6dc, 0x01f6ec,
	0x01f6f0, 0x01f6fc, 0x01f700, 0x01f776, 0x01f77b, 0x01f7d9, 0x01f7e0, 0x01f7eb,
	0x01f7f0, 0x01f7f0, 0x01f800, 0x01f80b, 0x01f810, 0x01f847, 0x01f850, 0x01f859,
	0x01f860, 0x01f887, 0x01f890, 0x01f8ad, 0x01f8b0, 0x01f8b1, 0x01f900, 0x01fa53,
	0x01fa60, 0x01fa6d, 0x01fa70, 0x01fa7c, 0x01fa80, 0x01fa88, 0x01fa90, 0x01fac5,
	0x01face, 0x01fadb, 0x01fae0, 0x01fae8, 0x01faf0, 0x01faf8, 0x01fb00, 0x01fbca,
	0x01fbf0, 0x01fbf9, 0x020000, 0x02a6df, 0x02a700, 0x02b739, 0x02b740, 0x02b81d,
	0x02b820, 0x02cea1, 0x02ceb0, 0x02ebe0, 0x02f800, 0x02fa1d, 0x030000, 0x03134a,
	0x031350, 0x0323af, 0x0e0100, 0x0e01ef,
};
static const uint16_t not_print32[] = {
	0x000c, 0x0027, 0x003b, 0x003e, 0x018f, 0x039e, 0x057b, 0x058b, 0x0593, 0x0596, 0x05a2, 0x05b2,
	0x05ba, 0x0786, 0x07b1, 0x0809, 0x0836, 0x0856, 0x08f3, 0x0a04, 0x0a14, 0x0a18, 0x0e7f, 0x0eaa,
	0x10bd, 0x1135, 0x11e0, 0x1212, 0x1287, 0x1289, 0x128e, 0x129e, 0x1304, 0x1329, 0x1331, 0x1334,
	0x133a, 0x145c, 0x1914, 0x1917, 0x1936, 0x1c09, 0x1c37, 0x1ca8, 0x1d07, 0x1d0a, 0x1d3b, 0x1d3e,
	0x1d66, 0x1d69, 0x1d8f, 0x1d92, 0x1f11, 0x246f, 0x6a5f, 0x6abf, 0x6b5a, 0x6b62, 0xaff4, 0xaffc,
	0xafff, 0xd455, 0xd49d, 0xd4ad, 0xd4ba, 0xd4bc, 0xd4c4, 0xd506, 0xd515, 0xd51d, 0xd53a, 0xd53f,
	0xd545, 0xd551, 0xdaa0, 0xe007, 0xe022, 0xe025, 0xe7e7, 0xe7ec, 0xe7ef, 0xe7ff, 0xee04, 0xee20,
	0xee23, 0xee28, 0xee33, 0xee38, 0xee3a, 0xee48, 0xee4a, 0xee4c, 0xee50, 0xee53, 0xee58, 0xee5a,
	0xee5c, 0xee5e, 0xee60, 0xee63, 0xee6b, 0xee73, 0xee78, 0xee7d, 0xee7f, 0xee8a, 0xeea4, 0xeeaa,
	0xf0c0, 0xf0d0, 0xfabe, 0xfb93,
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* The first index i with a[i] >= v (n when none), in a sorted table of 16- or 32-bit entries. */
static size_t search(const void *a, size_t width, size_t n, uint32_t v)
{
	size_t i = 0, j = n;
	while (i < j) {
		size_t h = i + (j - i) / 2;
		uint32_t at = width == 2 ? ((const uint16_t *)a)[h] : ((const uint32_t *)a)[h];
		if (at < v)
			i = h + 1;
		else
			j = h;
	}
	return i;
}

#define SEARCH(table, v) search((table), sizeof((table)[0]), N(table), (v))

/* strconv.IsPrint */
static bool is_print(uint32_t r)
{
	if (r <= 0xFF) {
		if (r >= 0x20 && r <= 0x7E)
			return true;
		if (r >= 0xA1 && r <= 0xFF)
			return r != 0xAD;
		return false;
	}
	if (r < 0x10000) {
		uint16_t rr = (uint16_t)r;
		size_t i = SEARCH(print16, rr);
		if (i >= N(print16) || rr < print16[i & ~(size_t)1] || print16[i | 1] < rr)
			return false;
		size_t j = SEARCH(not_print16, rr);
		return !(j < N(not_print16) && not_print16[j] == rr);
	}
	size_t i = SEARCH(print32, r);
	if (i >= N(print32) || r < print32[i & ~(size_t)1] || print32[i | 1] < r)
		return false;
	if (r >= 0x20000)
		return true;
	uint16_t rr = (uint16_t)(r - 0x10000);
	size_t j = SEARCH(not_print32, rr);
	return !(j < N(not_print32) && not_print32[j] == rr);
}
