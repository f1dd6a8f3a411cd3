from shopstack_gateway.cli import main

main()
