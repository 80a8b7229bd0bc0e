"""``python -m hrwsi.testing.nomad_server``: serve the stand-in forever."""

from hrwsi.testing.nomad_server.harness import main

main()
