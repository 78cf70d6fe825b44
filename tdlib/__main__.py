from tdlib.cli import main

raise SystemExit(main())
