from dynamo.cli import main

main()
