from webhook_grpc.cli import main

raise SystemExit(main())
