from mlscale.cli import main

raise SystemExit(main())
