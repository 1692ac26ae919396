from __future__ import annotations

from gitxact.cli.entry import main

raise SystemExit(main())
