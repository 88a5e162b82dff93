// The HTTPS side of EKS's control-plane webhooks, compiled: TLS and HTTP (HTTP/2 where the API
// server asks for it, as aws-iam-authenticator, a Go program, serves it), in front of the
// webhooks' Python (helpers/sandbox/eks/webhook.py), which makes every answer.
//
// Why (issue #16): at 50 concurrent clients the Python HTTPS server spent as much CPU per token
// review as the review itself, and the API server, served HTTP/1.1, kept opening connections to it
// (a TLS handshake each). Here the API server keeps one HTTP/2 connection, and each request goes
// to Python as one frame over a Unix socket that stays open.
//
// Started by the webhooks' Python (helpers/sandbox/eks/front.py), never by hand: it inherits the
// listening socket the Python bound (-listen-fd), asks the Python whether each new connection's
// process belongs to the sandbox's user (the rule lives in one place), forwards every request as
// it came (method, target, content type, the client certificate's name, body) and writes the
// answer it gets back. It exits when its standard input closes: its parent is gone.
//
// A frame, both ways: two big-endian uint32 (the JSON head's length, the body's length), the
// head, the body. Only the standard library: building it downloads nothing.
//
// With -floor=CN it asks no one: it says yes to every token review from the client certificate
// CN, on -port. That is benchmarks/bench_tokenreview.py's compiled floor, never part of a
// sandbox: what serving a webhook costs the API server here before any review's work.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"
)

// The largest request body read: the API server's own limit on a request is 3 MiB.
const maxBody = 16 << 20

// The largest frame head accepted from the Python: a status and a content type.
const maxHead = 64 << 10

type request struct {
	Method      string `json:"method,omitempty"`
	Target      string `json:"target,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	Caller      string `json:"caller,omitempty"`
	Client      string `json:"client,omitempty"`
	// a connection's first question: may PEER (host:port), connected to LOCAL, be served?
	Peer  string `json:"peer,omitempty"`
	Local string `json:"local,omitempty"`
}

type reply struct {
	Status      int    `json:"status"`
	ContentType string `json:"content_type"`
}

// backend: the Python's Unix socket. At most `atOnce` requests are in the Python at a time; one
// that waits longer than `wait` for its turn goes anyway (a review waiting on another host's STS
// slows the others for that long at most), on a connection of its own.
type backend struct {
	path  string
	turns chan struct{}
	idle  chan net.Conn
	wait  time.Duration
}

func newBackend(path string, atOnce int, wait time.Duration) *backend {
	return &backend{path, make(chan struct{}, atOnce), make(chan net.Conn, atOnce), wait}
}

func (b *backend) exchange(head request, body []byte) (reply, []byte, error) {
	timer := time.NewTimer(b.wait)
	select {
	case b.turns <- struct{}{}:
		defer func() { <-b.turns }()
	case <-timer.C:
	}
	timer.Stop()
	var conn net.Conn
	select {
	case conn = <-b.idle:
	default:
		c, err := net.Dial("unix", b.path)
		if err != nil {
			return reply{}, nil, err
		}
		conn = c
	}
	rep, out, err := roundTrip(conn, head, body)
	if err != nil {
		conn.Close()
		return reply{}, nil, err
	}
	select {
	case b.idle <- conn:
	default:
		conn.Close()
	}
	return rep, out, nil
}

func roundTrip(conn net.Conn, head request, body []byte) (reply, []byte, error) {
	h, err := json.Marshal(head)
	if err != nil {
		return reply{}, nil, err
	}
	frame := make([]byte, 8, 8+len(h)+len(body))
	binary.BigEndian.PutUint32(frame[0:4], uint32(len(h)))
	binary.BigEndian.PutUint32(frame[4:8], uint32(len(body)))
	frame = append(append(frame, h...), body...)
	if _, err := conn.Write(frame); err != nil {
		return reply{}, nil, err
	}
	var sizes [8]byte
	if _, err := io.ReadFull(conn, sizes[:]); err != nil {
		return reply{}, nil, err
	}
	hl, bl := binary.BigEndian.Uint32(sizes[0:4]), binary.BigEndian.Uint32(sizes[4:8])
	if hl > maxHead || bl > maxBody {
		return reply{}, nil, fmt.Errorf("a frame of %d+%d bytes from the webhooks", hl, bl)
	}
	buf := make([]byte, hl+bl)
	if _, err := io.ReadFull(conn, buf); err != nil {
		return reply{}, nil, err
	}
	var rep reply
	if err := json.Unmarshal(buf[:hl], &rep); err != nil {
		return reply{}, nil, err
	}
	return rep, buf[hl:], nil
}

var errRefused = errors.New("refused: a process of another user")

// peerConn asks the backend about its peer before its first read, in its own goroutine (a TLS
// server reads the client's hello before it writes anything): a refused peer gets its
// connection closed with nothing sent.
type peerConn struct {
	net.Conn
	b       *backend
	once    sync.Once
	refused bool
}

func (c *peerConn) Read(p []byte) (int, error) {
	c.once.Do(func() {
		rep, _, err := c.b.exchange(
			request{Peer: c.RemoteAddr().String(), Local: c.LocalAddr().String()}, nil)
		c.refused = err != nil || rep.Status != http.StatusOK
	})
	if c.refused {
		c.Conn.Close()
		return 0, errRefused
	}
	return c.Conn.Read(p)
}

type peerListener struct {
	net.Listener
	b *backend
}

func (l peerListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &peerConn{Conn: c, b: l.b}, nil
}

const text = "text/plain; charset=utf-8"

func answer(w http.ResponseWriter, status int, ctype string, body []byte) {
	w.Header().Set("Content-Type", ctype)
	w.WriteHeader(status)
	w.Write(body)
}

// readBody: the request's body, or false once an answer saying why not is written.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		answer(w, http.StatusBadRequest, text, []byte("could not read the body\n"))
		return nil, false
	}
	if len(body) > maxBody {
		answer(w, http.StatusRequestEntityTooLarge, text, []byte("request body too large\n"))
		return nil, false
	}
	return body, true
}

func caller(r *http.Request) string {
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		return r.TLS.PeerCertificates[0].Subject.CommonName
	}
	return ""
}

func handler(b *backend) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := readBody(w, r)
		if !ok {
			return
		}
		head := request{Method: r.Method, Target: r.RequestURI, Client: r.RemoteAddr, Caller: caller(r)}
		if ct, ok := r.Header["Content-Type"]; ok && len(ct) > 0 {
			head.ContentType = ct[0]
		}
		rep, out, err := b.exchange(head, body)
		if err != nil {
			log.Printf("could not answer %s %s: %v", r.Method, r.URL.Path, err)
			answer(w, http.StatusInternalServerError, text, []byte("internal error\n"))
			return
		}
		answer(w, rep.Status, rep.ContentType, out)
	})
}

// floor says yes to every token review from the client certificate CLIENT, itself (-floor).
func floor(client string) http.Handler {
	const ctype = "application/json"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/healthz" {
			answer(w, http.StatusOK, ctype, []byte("ok"))
			return
		}
		// the webhooks' rule: the API server's client certificate, and no one else
		if caller(r) != client {
			answer(w, http.StatusForbidden, ctype, []byte("only the API server"))
			return
		}
		if r.Method != http.MethodPost || r.URL.Path != "/authenticate" {
			answer(w, http.StatusNotFound, ctype, []byte("not found"))
			return
		}
		body, ok := readBody(w, r)
		if !ok {
			return
		}
		var rev struct {
			APIVersion string `json:"apiVersion"`
		}
		if err := json.Unmarshal(body, &rev); err != nil {
			answer(w, http.StatusBadRequest, ctype, []byte(fmt.Sprintf("not a TokenReview: %v", err)))
			return
		}
		out, _ := json.Marshal(map[string]any{
			"apiVersion": rev.APIVersion, "kind": "TokenReview",
			"status": map[string]any{"authenticated": true, "user": map[string]any{
				"username": "kubernetes-admin", "uid": "aws-iam-authenticator:floor",
				"groups": []string{"system:masters"}}},
		})
		answer(w, http.StatusOK, ctype, out)
	})
}

// quiet drops net/http's line for every connection that ends before its TLS handshake does (a
// refused peer, a probe, a client that never says hello): the Python server logged none either.
type quiet struct{}

func (quiet) Write(p []byte) (int, error) {
	if strings.Contains(string(p), "TLS handshake error") {
		return len(p), nil
	}
	return os.Stderr.Write(p)
}

func main() {
	fd := flag.Int("listen-fd", -1, "the listening socket, inherited")
	port := flag.Int("port", 0, "listen on 127.0.0.1:PORT itself (with -floor)")
	path := flag.String("backend", "", "the webhooks' Unix socket")
	pki := flag.String("pki", "", "the sandbox's pki directory")
	atOnce := flag.Int("at-once", 1, "requests in the webhooks' Python at a time")
	wait := flag.Duration("turn-wait", time.Second, "the longest a request waits for its turn")
	floorClient := flag.String("floor", "", "answer yes to every token review from this client")
	procs := flag.Int("procs", 1, "OS threads running Go code at once (GOMAXPROCS)")
	flag.Parse()
	// One by default: the answers are made one at a time behind us anyway, and with a P per core
	// each request's goroutines were handed between threads (waking and spinning ones) on a
	// machine whose other core is the API server's (front.py: PROCS).
	runtime.GOMAXPROCS(*procs)
	log.SetPrefix("webhooks-front: ")
	served := *fd >= 0 && *path != "" && *floorClient == ""
	floored := *port > 0 && *floorClient != ""
	if *pki == "" || *atOnce < 1 || *procs < 1 || served == floored {
		log.Fatal("usage: webhooks-front -listen-fd=N -backend=SOCKET -pki=DIR, " +
			"or -port=N -floor=CN -pki=DIR")
	}
	var ln net.Listener
	var err error
	if floored {
		ln, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	} else {
		f := os.NewFile(uintptr(*fd), "listener")
		ln, err = net.FileListener(f)
		f.Close()
	}
	if err != nil {
		log.Fatalf("no listening socket: %v", err)
	}
	caPEM, err := os.ReadFile(*pki + "/ca.crt")
	if err != nil {
		log.Fatal(err)
	}
	cas := x509.NewCertPool()
	if !cas.AppendCertsFromPEM(caPEM) {
		log.Fatalf("no certificate in %s/ca.crt", *pki)
	}
	cert, err := tls.LoadX509KeyPair(*pki+"/authenticator.crt", *pki+"/authenticator.key")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{cert},
			ClientCAs:    cas,
			// asked for and checked, not required: a caller without one gets a 403 in words
			ClientAuth: tls.VerifyClientCertIfGiven,
			MinVersion: tls.VersionTLS12,
		},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(quiet{}, "webhooks-front: ", log.LstdFlags),
	}
	if floored {
		srv.Handler = floor(*floorClient)
		log.Fatal(srv.ServeTLS(ln, "", ""))
	}
	go func() { // the parent holds our standard input open while it lives
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	b := newBackend(*path, *atOnce, *wait)
	srv.Handler = handler(b)
	log.Fatal(srv.ServeTLS(peerListener{ln, b}, "", ""))
}
