// Command health-probe is the HTTP health check SwiftDeploy bind-mounts read-only into an app container and
// names as its Docker healthcheck, so that an image with no shell, curl or Python (even FROM scratch) can be
// checked over HTTP from inside its own network namespace.
//
//	health-probe URL [--host=NAME] [--timeout=SECONDS]
//	health-probe http://127.0.0.1:3000/healthz --host=example.com --timeout=3
//
// It sends one GET (HTTP/1.1, Connection: close) and does not follow redirects. Exit status: 0 when the
// status is 2xx or 3xx, 1 for any other status or no answer, 2 for bad arguments. It prints exactly one
// line to stdout, which Docker keeps in the container's health log:
//
//	GET /healthz: 200
//	GET /healthz: connection refused
//	GET /healthz: timed out after 3 s
//
// No argument has a space in it: Podman 4.3 splits exec-form healthcheck arguments on spaces. It speaks
// plain HTTP only, and avoids net/http, net/url and fmt, which would make the binary several times larger.
package main

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	usage          = "usage: health-probe http://HOST[:PORT][/PATH] [--host=NAME] [--timeout=SECONDS]"
	defaultTimeout = 5 * time.Second
	discardLimit   = 64 << 10 // at most this much of the response after the status line is read and dropped
	lineLimit      = 8 << 10  // longest status or header line accepted
)

type probe struct {
	addr    string // host:port to dial
	host    string // Host header
	target  string // request target: path and query
	timeout time.Duration
	seconds string // the timeout as given, for the message
}

func main() {
	p, err := parseArgs(os.Args[1:])
	if err != nil {
		os.Stderr.WriteString("health-probe: " + err.Error() + "; " + usage + "\n")
		os.Exit(2)
	}
	status, err := p.get()
	line := "GET " + p.target + ": "
	if err != nil {
		line += p.describe(err)
	} else {
		line += strconv.Itoa(status)
	}
	os.Stdout.WriteString(oneLine(line) + "\n")
	if err != nil || status < 200 || status > 399 {
		os.Exit(1)
	}
}

func parseArgs(args []string) (*probe, error) {
	p := &probe{timeout: defaultTimeout, seconds: "5"}
	var rawURL string
	var haveHost, haveTimeout bool
	for _, arg := range args {
		switch {
		case arg == "-h" || arg == "--help":
			os.Stdout.WriteString(usage + "\n")
			os.Exit(0)
		case strings.HasPrefix(arg, "--host="):
			if haveHost {
				return nil, errors.New("--host given twice")
			}
			haveHost = true
			p.host = arg[len("--host="):]
			if p.host == "" || !printable(p.host) {
				return nil, errors.New("bad --host value " + strconv.Quote(p.host))
			}
		case strings.HasPrefix(arg, "--timeout="):
			if haveTimeout {
				return nil, errors.New("--timeout given twice")
			}
			haveTimeout = true
			p.seconds = arg[len("--timeout="):]
			s, err := strconv.ParseFloat(p.seconds, 64)
			if err != nil || !(s > 0 && s <= 3600) {
				return nil, errors.New("bad --timeout value " + strconv.Quote(p.seconds) + " (seconds, more than 0, at most 3600)")
			}
			p.timeout = time.Duration(s * float64(time.Second))
		case strings.HasPrefix(arg, "-"):
			return nil, errors.New("unknown option " + strconv.Quote(arg))
		case rawURL != "":
			return nil, errors.New("more than one URL")
		default:
			rawURL = arg
		}
	}
	if rawURL == "" {
		return nil, errors.New("no URL")
	}
	authority, err := p.parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if !haveHost {
		p.host = authority
	}
	return p, nil
}

// parseURL sets addr and target from http://HOST[:PORT][/PATH][?QUERY][#FRAGMENT] and returns HOST[:PORT].
func (p *probe) parseURL(raw string) (string, error) {
	bad := func(why string) (string, error) { return "", errors.New("bad URL " + strconv.Quote(raw) + ": " + why) }
	if len(raw) < 7 || !strings.EqualFold(raw[:7], "http://") {
		return bad("not http:// (https is not supported)")
	}
	if !printable(raw) {
		return bad("spaces or control characters")
	}
	rest := raw[7:]
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		rest = rest[:i]
	}
	authority := rest
	p.target = "/"
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authority, p.target = rest[:i], rest[i:]
		if p.target[0] == '?' {
			p.target = "/" + p.target
		}
	}
	if strings.IndexByte(authority, '@') >= 0 {
		return bad("user information is not supported")
	}
	host, port := authority, "80"
	if strings.HasPrefix(authority, "[") { // [IPv6]:port
		end := strings.IndexByte(authority, ']')
		if end < 0 {
			return bad("no ] after the IPv6 address")
		}
		host = authority[1:end]
		if after := authority[end+1:]; after != "" {
			if after[0] != ':' {
				return bad("junk after ]")
			}
			port = after[1:]
		}
	} else if i := strings.LastIndexByte(authority, ':'); i >= 0 {
		host, port = authority[:i], authority[i+1:]
	}
	if host == "" {
		return bad("no host")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || port[0] == '+' {
		return bad("bad port " + strconv.Quote(port))
	}
	p.addr = net.JoinHostPort(host, port)
	return authority, nil
}

// get sends the request and returns the status code of the final (non-1xx) response.
func (p *probe) get() (int, error) {
	deadline := time.Now().Add(p.timeout)
	conn, err := (&net.Dialer{Deadline: deadline}).Dial("tcp", p.addr)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	conn.SetDeadline(deadline)
	request := "GET " + p.target + " HTTP/1.1\r\nHost: " + p.host +
		"\r\nUser-Agent: swiftdeploy-health\r\nAccept: */*\r\nConnection: close\r\n\r\n"
	if _, err := io.WriteString(conn, request); err != nil {
		return 0, err
	}
	r := bufio.NewReaderSize(io.LimitReader(conn, discardLimit+lineLimit), 4096)
	for {
		line, err := readLine(r)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return 0, errors.New("connection closed without a response")
			}
			return 0, err
		}
		status, ok := parseStatusLine(line)
		if !ok {
			return 0, errors.New("not an HTTP response: " + strconv.Quote(truncate(line, 40)))
		}
		if status >= 100 && status <= 199 && status != 101 { // informational: a final response follows
			if _, err := readHeaders(r); err != nil {
				return 0, err
			}
			continue
		}
		discard(r, status)
		return status, nil
	}
}

// parseStatusLine reads the code out of "HTTP/1.1 200 OK".
func parseStatusLine(line string) (int, bool) {
	if !strings.HasPrefix(line, "HTTP/1.") || len(line) < 12 || line[8] != ' ' || (len(line) > 12 && line[12] != ' ') {
		return 0, false
	}
	code, err := strconv.Atoi(line[9:12])
	if err != nil || code < 100 || line[9] == '+' || line[9] == '-' {
		return 0, false
	}
	return code, true
}

// discard reads and drops the rest of the response, at most discardLimit bytes (the reader is limited), so
// that closing the connection does not reset it under a server still sending. Errors do not matter here.
func discard(r *bufio.Reader, status int) {
	headers, err := readHeaders(r)
	if err != nil || status == 204 || status == 304 {
		return
	}
	if te, ok := headers["transfer-encoding"]; ok && strings.Contains(strings.ToLower(te), "chunked") {
		for {
			line, err := readLine(r)
			if err != nil {
				return
			}
			if i := strings.IndexByte(line, ';'); i >= 0 {
				line = line[:i]
			}
			size, err := strconv.ParseUint(strings.TrimSpace(line), 16, 63)
			if err != nil {
				return
			}
			if size == 0 {
				readHeaders(r) // trailers
				return
			}
			if _, err := io.CopyN(io.Discard, r, int64(size)+2); err != nil {
				return
			}
		}
	}
	if cl, ok := headers["content-length"]; ok {
		if n, err := strconv.ParseInt(strings.TrimSpace(cl), 10, 64); err == nil && n >= 0 {
			io.CopyN(io.Discard, r, n)
		}
		return
	}
	io.Copy(io.Discard, r) // delimited by the server closing the connection
}

// readHeaders reads header lines up to the empty line; it keeps the last value of each (lower-cased) name.
func readHeaders(r *bufio.Reader) (map[string]string, error) {
	headers := map[string]string{}
	for {
		line, err := readLine(r)
		if err != nil {
			return headers, err
		}
		if line == "" {
			return headers, nil
		}
		if name, value, ok := strings.Cut(line, ":"); ok {
			headers[strings.ToLower(strings.TrimSpace(name))] = strings.TrimSpace(value)
		}
	}
}

// readLine reads one line without its CRLF (or LF), at most lineLimit bytes.
func readLine(r *bufio.Reader) (string, error) {
	var line []byte
	for {
		chunk, isPrefix, err := r.ReadLine()
		if err != nil {
			return "", err
		}
		line = append(line, chunk...)
		if len(line) > lineLimit {
			return "", errors.New("response line longer than 8 KB")
		}
		if !isPrefix {
			return string(line), nil
		}
	}
}

// describe turns an error of get into the short text after "GET /path: ".
func (p *probe) describe(err error) string {
	var errno syscall.Errno
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()):
		return "timed out after " + p.seconds + " s"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return "no such host " + dnsErr.Name
		}
		return "cannot resolve " + dnsErr.Name + ": " + dnsErr.Err
	case errors.As(err, &errno):
		return errno.Error()
	}
	return truncate(err.Error(), 200)
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// oneLine keeps the output on one line whatever a server sent.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
