"""Many WebSocket clients in one process, for the gateway, fan-out and reliability benchmarks.

    python -m bench.wsclients --url ws://127.0.0.1:PORT/ws --token T --count 500 --mode fleet \\
        --redis redis://127.0.0.1:P/0

Every client subscribes to `fleet` or `cpu` and decodes every frame (msgspec); one Redis
subscriber in the process sees every published sample, so that latency is the receive time minus
the sample's `ts` (docs/benchmarks.md and docs/reliability.md say what is measured; `--help` lists
the options, all but the first five off by default).

Driven over stdin/stdout, one JSON object a line: it prints `ready` once every client has had its
first frame; `{"cmd":"window","start":T0,"end":T1,"grace":G}` (wall clock) makes it print
`result` at T1 + G; `{"cmd":"stall","count":N}` pauses N clients' reading (`stalled`, with their
ports) and `{"cmd":"resume","wait":S}` resumes them (`resumed`, with how their connections ended);
`{"cmd":"close"}` or the end of stdin closes every client. It exits by itself after
`--max-seconds`, and only ever connects to 127.0.0.1.
"""
