// Command ferretdb runs FerretDB v1.24 with the SQLite backend for fengqiao's local stack.
//
// The binary that `go install .../cmd/ferretdb` builds panics at start (it looks for a
// version file that only the project's own build writes), so we embed the library instead.
// `fengqiao stack up` builds it against a copy of the library with patches.json applied
// (fengqiao/stack/ferretdb.py).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	_ "net/http/pprof" // the profiles on -debug-addr
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen-addr", "127.0.0.1:27017", "TCP address to listen on")
	dir := flag.String("data-dir", "data", "directory for the SQLite files")
	level := flag.String("log-level", "warn", "debug, info, warn or error")
	gc := flag.Int("gc-percent", 400, "the Go GC's target heap growth (GOGC), unless GOGC is set")
	debugAddr := flag.String("debug-addr", "", "serve Go's profiles (/debug/pprof/) on this address; off when empty")
	flag.Parse()

	if *debugAddr != "" {
		// `go tool pprof http://<addr>/debug/pprof/profile?seconds=30`: where FerretDB's CPU goes.
		go func() { fmt.Fprintln(os.Stderr, "ferretdb: debug:", http.ListenAndServe(*debugAddr, nil)) }()
	}

	// FerretDB allocates a few times each document it stores (BSON decoding, its JSON form), so
	// its small heap filled and was collected again and again: at Go's default of 100 the
	// collector took about 15 % of its CPU under the tracker's bench (pprof), and 400 used 15-30 %
	// less CPU per run (peak RSS 80 → 120 MB).
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(*gc)
	}

	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb: bad -log-level:", err)
		os.Exit(2)
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb: cannot create data dir:", err)
		os.Exit(1)
	}
	text := slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})
	logger := slog.New(lazyAttrs{inner: text})

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + *dir + "/",
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb:", err)
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger.Warn("ferretdb listening", "addr", *listen, "data", *dir)
	if err := f.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb:", err)
		os.Exit(1)
	}
}

// lazyAttrs defers a logger's With and WithGroup until a record is actually written.
//
// FerretDB's SQL layer calls `logger.With(slog.Any("args", args)).DebugContext(...)` around
// every statement; the text handler formats (quotes) the attributes in With, before the level
// check, so every insert paid for quoting its whole document twice: 29 % of FerretDB's CPU on
// inserts of 3 KB documents (measured with pprof), and 3,300 instead of 6,100 documents/s. At
// the default level those records are dropped, and so is the work now.
type lazyAttrs struct {
	inner slog.Handler
	steps []func(slog.Handler) slog.Handler // With and WithGroup calls, in order
}

func (h lazyAttrs) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

func (h lazyAttrs) Handle(ctx context.Context, r slog.Record) error {
	inner := h.inner
	for _, step := range h.steps {
		inner = step(inner)
	}
	return inner.Handle(ctx, r)
}

func (h lazyAttrs) then(step func(slog.Handler) slog.Handler) slog.Handler {
	steps := make([]func(slog.Handler) slog.Handler, len(h.steps), len(h.steps)+1)
	copy(steps, h.steps)
	return lazyAttrs{inner: h.inner, steps: append(steps, step)}
}

func (h lazyAttrs) WithAttrs(attrs []slog.Attr) slog.Handler {
	return h.then(func(inner slog.Handler) slog.Handler { return inner.WithAttrs(attrs) })
}

func (h lazyAttrs) WithGroup(name string) slog.Handler {
	return h.then(func(inner slog.Handler) slog.Handler { return inner.WithGroup(name) })
}
