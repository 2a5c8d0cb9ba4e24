# Setup: runs as-is locally, in JupyterLab and in Google Colab.
# In Colab it fetches the book (for its `utils` package) and installs what Colab lacks; never torch.
import os
import subprocess
import sys
from pathlib import Path

BOOK_REPO = "https://github.com/sae-tutorial-book/sae-tutorial-book"  # repository.url in _config.yml
IN_COLAB = "google.colab" in sys.modules
if IN_COLAB:
    book_dir = Path(os.environ.get("SAE_BOOK_DIR", "/content/sae-tutorial-book"))
    if not (book_dir / "utils").is_dir():
        repo = os.environ.get("SAE_BOOK_REPO", BOOK_REPO)
        subprocess.run(["git", "clone", "--quiet", "--depth=1", repo, str(book_dir)], check=True)
    requirements = book_dir / "requirements-colab.txt"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-r", str(requirements)], check=True)
else:
    here = Path.cwd().resolve()
    book_dir = next((p for p in (here, *here.parents) if (p / "utils" / "presets.py").is_file()), None)
    if book_dir is None:
        raise RuntimeError(f"Cannot find the book's utils/ package in {here} or above it: "
                           "start Jupyter inside the book's folder (e.g. from notebooks/).")
if str(book_dir) not in sys.path:
    sys.path.insert(0, str(book_dir))
