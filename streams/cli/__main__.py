from streams.cli.app import main

main()
