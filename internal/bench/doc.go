// Package bench is `connectord bench`: a black-box benchmark of the real
// binary that anyone can run on their own machine.
//
// It starts connectord (os.Executable, or -binary) as a child process,
// `connectord run -config FILE`, on SQLite in a temporary state directory
// (under -dir, on the disk whose fsync it measures), log level warn,
// against the in-repository fakes running in the benchmark's own process:
// smstest (a fake Twilio: signed inbound webhooks in, the API for the
// answers) and whosontest (a fake WhosOn whose operator answers every
// visitor line at once, so traffic flows both ways). SMS pacing, the cap on
// open conversations and the per-customer send rate are off (they would
// shape the figures instead of the daemon); every other key is the default.
//
// Each run measures, and prints as one table (min / median / max over
// -runs):
//
//  1. Floors: p50 and p99 of 1,000 4 KiB appends + fdatasync on a file in
//     the state directory's file system, and of 1,000 sequential HTTP
//     requests over one kept-alive loopback connection.
//  2. Open-loop load at each of -rates for -duration, from -customers
//     customers whose conversations are opened first: arrivals on a fixed
//     schedule, each webhook in its own goroutine, latency taken from its
//     scheduled time (no coordinated omission). Per step: achieved rate,
//     acknowledgement p50/p99/max, errors (non-200, 503 included),
//     customer->agent (scheduled -> the fake WhosOn has the line) and
//     agent->customer (the operator answered -> the fake Twilio has the
//     SMS) p50/p99, acknowledgement p50 over the floor (fsync p50 +
//     loopback p50), store writes per commit and synced writes per relayed
//     message (from /metrics; "-" when the daemon does not count them),
//     daemon CPU per relayed message and the CPU both processes used
//     (/proc). The knee is the highest rate whose acknowledgement p99 stayed
//     under 50 ms with no errors.
//  3. Footprint at each of -conversations: a fresh daemon, VmRSS and
//     go_goroutines before, N conversations opened (one SMS each from N
//     customers), waited for until the fake WhosOn has N chats and the
//     outbox is empty; then the growth per conversation and the open files.
//     WhosOn needs one WebSocket per chat, an open file in the daemon and
//     one in the fake: N is capped below the hard limit of open files (the
//     soft limit is raised to it, for the daemon too), and the cap printed.
//  4. Restart: with those N conversations stored, SIGKILL, start again, and
//     time until the admin /readyz answers 200 and until every chat was
//     resumed at the fake WhosOn.
//
// It also draws the load steps (median over runs) as a PNG: latency on a
// log scale against offered rate, with the floor as a horizontal line.
//
// Flags:
//
//	-binary PATH           connectord to run (default: this executable)
//	-rates LIST            offered rates, messages/s (default 250,1000,2000,3000,4000)
//	-duration D            length of each load step (default 10s)
//	-customers N           customers the load comes from (default 200)
//	-conversations LIST    footprint sizes (default 5000,20000; capped by open files)
//	-runs K                repeat everything K times (default 1)
//	-png FILE              the plot (default bench.png; "" for none)
//	-json                  also print the figures as JSON
//	-dir DIR               where state directories go (default $TMPDIR)
//
// The load generator shares the machine with the daemon; it precomputes
// every signed webhook before a step, uses one HTTP client with kept-alive
// connections, and logs nothing per request. The table reports the CPU
// each side used, so a reader can tell which one ran out.
package bench
