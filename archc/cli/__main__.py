from archc.cli import main

main()
