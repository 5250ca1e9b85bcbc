from lmmap.cli import main

raise SystemExit(main())
