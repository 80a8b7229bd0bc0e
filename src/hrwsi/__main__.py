from hrwsi.cli import main

main()
