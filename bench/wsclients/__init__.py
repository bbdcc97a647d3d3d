"""Many WebSocket clients in one process, for the gateway and fan-out benchmarks.

    python -m bench.wsclients --url ws://127.0.0.1:PORT/ws --token T --count 500 --mode fleet \\
        --redis redis://127.0.0.1:P/0

Every client connects (with `Authorization: Bearer T` when a token is given), subscribes to
`fleet` or to `cpu` (every host), then reads every frame and decodes it as JSON (msgspec, into
typed structs: the whole frame is parsed and checked). One Redis subscriber in the process watches
the samples the publisher sends, for the publish times.

- `fleet`: every client counts frames and host entries; every `--probe-every`-th client also
  decodes each host entry and measures its latency: receive time minus the agent's `ts` of the
  sample that carried those values (total, mem, load1), matched through the Redis subscriber.
- `cpu`: every client measures each sample's latency (receive time minus its `ts`), counts what
  arrived in the window (for CPU per delivered sample) and which of the samples published in the
  window reached it (reach).

Driven over stdin/stdout, one JSON object a line: it prints `ready` once every client is
subscribed and has had its first frame; `{"cmd":"window","start":T0,"end":T1,"grace":G}` (wall
clock) makes it print `result` at T1 + G; `{"cmd":"close"}` or the end of stdin makes it close
every client and exit. It exits by itself after `--max-seconds` whatever happens, and it only ever
connects to the loopback addresses it is given.

For the reliability benchmarks (bench/reliability_*.py), all off by default:

- `--light`: clients that are not probes count `fleet` frames and read the tick's `ts` from the
  frame's first bytes instead of parsing it (thousands of clients on one machine);
- `--exact-match` (`fleet`): an entry is matched to the newest sample with its values whose `ts`
  is before the frame's tick, once the Redis subscriber has seen past that tick (entries wait for
  it). Without it an entry takes the newest sample with those values seen so far, which is an
  older sample of the same host with the same values when the subscriber lags behind the
  gateway (idle hosts repeat `0.0` readings), and shows as a latency of tens of seconds;
- `--reach` (`fleet`): probe clients also count which published samples reached them, and the
  process works out which samples were superseded by a newer one of the same host before the
  gateway's next tick (latest-wins, not a loss): `reach_*` in the result;
- `{"cmd":"stall","count":N}`: N connected clients stop reading (their transports are paused,
  the sockets stay open) and it prints `stalled` with their local ports;
  `{"cmd":"resume","wait":S}` reads again and prints `resumed` with how their connections ended;
- `--churn-lifetime S`: every client connects, follows for about S seconds (0.5 to 1.5 S; the
  first time 0 to 1.5 S), closes (cleanly or by dropping the TCP connection, `--churn-abort-share`),
  waits `--churn-pause` and connects again, until `close`; the result counts connects,
  handshake and first-frame times, failures and closes by the server;
- `--batch`: open `/ws?batch=1` as the dashboard does and split the batched messages (JSON
  arrays of frames) into frames; `--also-topics chat,...` follows those topics too (their frames
  are read and not counted);
- `--cpu-hosts K` (`fleet`): after its first full frame, a client also follows the samples of K
  random hosts of it (`cpu` narrowed to them, with their history), as the dashboard does for the
  hosts a person opens.
"""
