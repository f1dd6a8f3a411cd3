from shopstack_orders.cli import main

main()
