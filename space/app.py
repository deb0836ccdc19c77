"""LexiMind's web demo as a Hugging Face Space: the page `leximind-demo` serves (chapter 15's `build_demo`), with the
course models shipped in the package. Locally: `python space/app.py`."""

from leximind.app import build_demo

demo = build_demo()  # the Space's Gradio SDK serves `demo`

if __name__ == "__main__":
    demo.launch()
