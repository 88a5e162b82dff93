// A token webhook that does no work, compiled: bench_tokenreview's second floor, never part of a
// sandbox. floor_webhook.py is what one hop of our Python serving stack costs; this is what any
// webhook costs the API server on this machine, whatever serves it: TLS, HTTP (HTTP/2 when the
// API server asks for it, as the real aws-iam-authenticator, a Go program, serves it) and one
// JSON answer. A review's own checks can only add to it.
//
//	go build -o floor-webhook . && ./floor-webhook --port=N --pki=STATE/pki --client=CN
//
// Only the standard library: building it downloads nothing.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
)

// The largest TokenReview it reads: an EKS token is ~1.5 KB, the review around it less than 4.
const maxBody = 1 << 20

type review struct {
	APIVersion string `json:"apiVersion"`
}

func main() {
	port := flag.Int("port", 0, "the token webhook's port (the sandbox's ports.authenticator)")
	pki := flag.String("pki", "", "the sandbox's pki directory")
	client := flag.String("client", "", "the one client certificate's common name it answers")
	flag.Parse()
	if *port == 0 || *pki == "" || *client == "" {
		log.Fatal("usage: floor-webhook --port=N --pki=DIR --client=CN")
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
	answer := func(w http.ResponseWriter, status int, body []byte) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(body)
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/healthz" {
			answer(w, 200, []byte("ok"))
			return
		}
		// the same rule as the Python floor and the real webhook: the API server's client
		// certificate, and no one else
		if len(r.TLS.PeerCertificates) == 0 || r.TLS.PeerCertificates[0].Subject.CommonName != *client {
			answer(w, 403, []byte("only the API server"))
			return
		}
		if r.Method != http.MethodPost || r.URL.Path != "/authenticate" {
			answer(w, 404, []byte("not found"))
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
		var rev review
		if err == nil {
			err = json.Unmarshal(body, &rev)
		}
		if err != nil {
			answer(w, 400, []byte(fmt.Sprintf("not a TokenReview: %v", err)))
			return
		}
		out, _ := json.Marshal(map[string]any{
			"apiVersion": rev.APIVersion, "kind": "TokenReview",
			"status": map[string]any{"authenticated": true, "user": map[string]any{
				"username": "kubernetes-admin", "uid": "aws-iam-authenticator:floor",
				"groups": []string{"system:masters"}}},
		})
		answer(w, 200, out)
	})
	srv := &http.Server{
		Addr:    fmt.Sprintf("127.0.0.1:%d", *port),
		Handler: handler,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{cert},
			ClientCAs:    cas,
			ClientAuth:   tls.VerifyClientCertIfGiven,
			MinVersion:   tls.VersionTLS12,
		},
	}
	log.Fatal(srv.ListenAndServeTLS("", ""))
}
