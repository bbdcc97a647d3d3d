from fleetdeck.cli import main

main()
