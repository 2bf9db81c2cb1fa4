from todokede.cli import main

main()
