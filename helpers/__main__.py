from helpers.sandbox.cli import main

raise SystemExit(main())
