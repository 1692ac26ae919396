from __future__ import annotations

from gitxact.cli.main import main

raise SystemExit(main())
