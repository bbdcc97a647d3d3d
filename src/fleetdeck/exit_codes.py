"""The exit codes of every `fleetdeck` subcommand, in one place so they cannot drift apart."""

EXIT_OK = 0
EXIT_ALL_OK = EXIT_OK  # every host of a job succeeded
EXIT_SOME_FAILED = 1  # the job ran, and some host did not succeed
EXIT_REFUSED = 2  # bad arguments, or the gateway refused (token, role, scope, allowlist, limits)
EXIT_UNREACHABLE = 3  # the gateway cannot be reached
EXIT_GAVE_UP = 4  # the job's results stopped coming before it finished
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command ended by Ctrl-C
EXIT_STDOUT_CLOSED = 141  # 128 + SIGPIPE: what a shell reports for a writer its pipe's reader left
EXIT_ENDED = 255  # a shell session ended without the remote shell's exit status (as ssh does)
