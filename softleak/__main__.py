from softleak.cli import main

raise SystemExit(main())
