"""Test harness: the dashboard's sidebar drawn in the main area, without st.navigation.

Streamlit 1.67's AppTest drops everything the entry script draws outside the page on reruns once
st.navigation is used, so the form's widgets and errors are tested here; pages are tested through
dashboard/app.py itself."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dashboard import sidebar  # noqa: E402

f, bar = sidebar.render()
sidebar.picker(f)
sidebar.finish(bar)
