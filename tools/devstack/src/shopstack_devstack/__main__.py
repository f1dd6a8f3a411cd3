from shopstack_devstack.cli import main

main()
