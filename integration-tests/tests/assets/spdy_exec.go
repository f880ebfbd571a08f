// spdy_exec: a remotecommand client over moby/spdystream (the SPDY library
// client-go's streaming uses), for berthd's CRI streaming tests. It upgrades an HTTP
// connection to SPDY/3.1 with the v4.channel.k8s.io protocol, opens the error,
// stdin, stdout and stderr streams (stdin only with -stdin, stderr unless -tty, a
// resize stream with -tty, which sends one 100x40 size), copies its stdin and the
// remote output, and writes what arrived on the error stream (v4: a metav1.Status)
// to the file given with -status.
//
// usage: spdy_exec [-stdin] [-tty] -status FILE URL
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/moby/spdystream"
)

func fail(f string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "spdy_exec: "+f+"\n", a...)
	os.Exit(99)
}

func main() {
	stdin := flag.Bool("stdin", false, "send stdin")
	tty := flag.Bool("tty", false, "ask for a terminal")
	status := flag.String("status", "", "where to write the error stream's content")
	flag.Parse()
	u, err := url.Parse(flag.Arg(0))
	if err != nil || *status == "" {
		fail("usage: spdy_exec [-stdin] [-tty] -status FILE URL")
	}
	conn, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
	if err != nil {
		fail("dial: %v", err)
	}
	req, _ := http.NewRequest("POST", u.String(), nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "SPDY/3.1")
	req.Header.Add("X-Stream-Protocol-Version", "v4.channel.k8s.io")
	req.Header.Add("X-Stream-Protocol-Version", "channel.k8s.io")
	if err := req.Write(conn); err != nil {
		fail("request: %v", err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		fail("response: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(resp.Body)
		fail("upgrade refused: %s: %s", resp.Status, body)
	}
	if p := resp.Header.Get("X-Stream-Protocol-Version"); p != "v4.channel.k8s.io" {
		fail("protocol %q", p)
	}
	if br.Buffered() > 0 {
		fail("data before the SPDY session")
	}
	sc, err := spdystream.NewConnection(conn, false)
	if err != nil {
		fail("spdy: %v", err)
	}
	go sc.Serve(spdystream.NoOpStreamHandler)
	open := func(t string) *spdystream.Stream {
		s, err := sc.CreateStream(http.Header{"Streamtype": []string{t}}, nil, false)
		if err != nil {
			fail("stream %s: %v", t, err)
		}
		return s
	}
	errS := open("error")
	var wg sync.WaitGroup
	if *stdin {
		in := open("stdin")
		go func() {
			io.Copy(in, os.Stdin)
			in.Close()
		}()
	}
	out := open("stdout")
	wg.Add(1)
	go func() { defer wg.Done(); io.Copy(os.Stdout, out) }()
	if *tty {
		rs := open("resize")
		rs.Write([]byte(`{"Width":100,"Height":40}`))
	} else {
		e := open("stderr")
		wg.Add(1)
		go func() { defer wg.Done(); io.Copy(os.Stderr, e) }()
	}
	msg, _ := io.ReadAll(errS)
	wg.Wait()
	if err := os.WriteFile(*status, msg, 0o600); err != nil {
		fail("status: %v", err)
	}
	sc.Close()
}
