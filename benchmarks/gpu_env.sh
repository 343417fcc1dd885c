# Sourced by the GPU scripts (device_check.sh, results/ablation/quality_v3_gpu.sh) with PYTHON set: where the installed packages do not
# do (the GPU image: no datasets, an older transformers), install the carried wheels (.whl/, from
# `benchmarks/device_check.sh --prepare`) outside the image and put them first on PYTHONPATH.
if ! "$PYTHON" -c "import datasets, transformers; from packaging.version import Version; \
        assert Version(transformers.__version__) >= Version('5.23')" 2>/dev/null && compgen -G ".whl/*.whl" > /dev/null; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/vaelm-site \
        .whl/*.whl >&2
    export PYTHONPATH="/tmp/vaelm-site${PYTHONPATH:+:$PYTHONPATH}"
fi
