from shopstack_users.cli import main

main()
