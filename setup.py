from pathlib import Path

from setuptools import find_packages, setup


def requirements(name: str) -> list[str]:
    lines = Path(__file__).with_name("requirements").joinpath(name).read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith(("#", "-r"))]


setup(
    name="mlscale",
    version="0.1.0",
    description="MPI-aware benchmark harness for scientific deep learning on HPC systems",
    long_description=Path(__file__).with_name("README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["mlscale", "mlscale.*"]),
    package_data={"mlscale": ["**/*.yaml", "**/*.j2", "**/*.json"]},
    install_requires=requirements("base.txt"),
    extras_require={"dev": requirements("dev.txt")},
    entry_points={"console_scripts": ["mlscale = mlscale.cli:main"]},
)
