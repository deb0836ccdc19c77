"""A CUDA T4 played on the CPU, so that a CPU run sees the device bugs a GPU run would hit (test-only, never imported
by the packages).

On a CPU every tensor is on the one device, so a model left behind on the CPU while its inputs go to the GPU runs
without complaint. Inside `fake_t4()` PyTorch behaves as on a machine with one 16 GB NVIDIA T4 (compute capability
7.5, no bf16):

- `torch.cuda.is_available()` is True, and the device name, capability, properties and memory queries answer as a T4;
- a tensor created on `cuda` (`device="cuda"`, `.to("cuda")`, `.cuda()`, `model.to("cuda")`) is computed on the CPU
  but carries the device `cuda:0`: its `.device`, `.is_cuda`, its gradient, the results of operations on it;
- an operation that mixes a `cuda` tensor with a CPU tensor raises PyTorch's own `RuntimeError` ("Expected all
  tensors to be on the same device ..."), as do `.numpy()` of a `cuda` tensor and a CPU tensor indexed by a `cuda` one
  (0-dimensional CPU tensors mix with `cuda` ones, as in PyTorch);
- a forward pass of 100 GFLOP or more (about 2 x parameters x tokens) with the weights on the CPU raises an error too:
  on a GPU machine that is a model left behind, computing on the CPU while the GPU idles (small models, such as a
  parity check's, may run on the CPU);
- `torch.Generator(device="cuda")` is a CPU generator that plays a cuda one: a random draw with a generator of the
  other device fails as in PyTorch; memory queries count the bytes of the tensors that play cuda ones;
- `torch.autocast("cuda", dtype=torch.float16)` runs the CPU's fp16 autocast, `GradScaler("cuda")` scales the loss
  and skips non-finite steps as on the GPU, and `autocast("cuda", dtype=torch.bfloat16)` is refused as on a T4.
  `fake_t4(fp16_as=torch.bfloat16)` computes that fp16 autocast in bf16 instead: this CPU has no fp16 matrix unit
  (an fp16 product took 30 times as long as an fp32 one, a bf16 product 0.4 times), so the full-size rehearsal takes
  the T4's code path (fp16 chosen, loss scaling on) without its fp16 numbers, which the tests check at small sizes.

It is a `TorchFunctionMode`: it sees every PyTorch call made from Python (operators inside one call, such as SDPA's,
and the backward pass run in C++ are not checked). `python tools/rehearse.py` runs every chapter's full mode under
it; `tests/test_fake_t4.py` checks the mechanism itself.
"""

import weakref
from contextlib import contextmanager
from types import SimpleNamespace

import torch
from torch.overrides import TorchFunctionMode

CUDA, CPU = torch.device("cuda", 0), torch.device("cpu")
_fp16_as = [torch.float16]  # the dtype the CPU computes a cuda fp16 autocast in (fake_t4's fp16_as)
T4 = SimpleNamespace(
    name="Tesla T4",
    major=7,
    minor=5,
    total_memory=15_828_320_256,  # what torch.cuda.get_device_properties reports on Colab's T4 (14.74 GiB)
    multi_processor_count=40,
    is_integrated=False,
)
_MARK = "_fake_t4_device"  # the attribute that says a CPU tensor plays a cuda one


def _device(t: torch.Tensor) -> torch.device:
    "The device a tensor plays: cuda:0 if marked, else its real one."
    return CUDA if getattr(t, _MARK, False) else t.device


class _Memory:
    "The bytes held by tensors that play cuda ones, now and at their peak: what the T4's memory queries answer."

    now = peak = 0
    held: dict[int, int] = {}  # storage address -> bytes

    @classmethod
    def track(cls, t: torch.Tensor):
        storage = t.untyped_storage()
        address, size = storage.data_ptr(), storage.nbytes()
        if size and address not in cls.held:
            cls.held[address], cls.now = size, cls.now + size
            cls.peak = max(cls.peak, cls.now)
            weakref.finalize(t, cls.free, address)  # approximate: the first tensor seen on a storage frees it

    @classmethod
    def free(cls, address: int):
        cls.now -= cls.held.pop(address, 0)


def _mark(out, device: torch.device):
    "Give every tensor in `out` (a tensor, or a tuple or list of them) the played device `device`."
    if isinstance(out, torch.Tensor):
        setattr(out, _MARK, device.type == "cuda")
        if device.type == "cuda":
            _Memory.track(out)
    elif isinstance(out, (tuple, list)):
        for x in out:
            _mark(x, device)
    return out


def _tensors(args, kwargs):
    "The tensors among the arguments (one level into lists and tuples, as PyTorch's operators take them)."
    for a in (*args, *kwargs.values()):
        if isinstance(a, torch.Tensor):
            yield a
        elif isinstance(a, (list, tuple)):
            yield from (x for x in a if isinstance(x, torch.Tensor))


def _is_device(a) -> bool:
    if isinstance(a, torch.device):
        return True
    if isinstance(a, str):
        try:
            torch.device(a)
            return True
        except RuntimeError:
            return False
    return False


def _target(args: tuple, kwargs: dict):
    "For `Tensor.to(...)`: the device asked for (None: unchanged), and the arguments with it replaced by the CPU."
    if "device" in kwargs:
        return torch.device(kwargs["device"]), args, {**kwargs, "device": CPU}
    for i, a in enumerate(args):
        if _is_device(a):
            return torch.device(a), (*args[:i], CPU, *args[i + 1 :]), kwargs
        if isinstance(a, torch.Tensor):  # .to(other): other's device and dtype
            return _device(a), (*args[:i], a.dtype, *args[i + 1 :]), kwargs
    return None, args, kwargs


def _moved(func, self: torch.Tensor, device: torch.device | None, args, kwargs):
    "Run a `.to()`-like call on the CPU; the result is a new tensor on `device` (a copy, as a real move makes one)."
    out = func(self, *args, **kwargs)
    device = device or _device(self)
    if out is self and device != _device(self):
        out = self.clone()
    if device.type == "cuda" and device.index not in (None, 0):
        raise RuntimeError("CUDA error: invalid device ordinal (this fake T4 machine has one GPU, cuda:0)")
    return _mark(out, torch.device(device.type))


class _Generator(torch.Generator):
    "torch.Generator(device='cuda') played by a CPU generator that remembers it plays a cuda one."

    def __new__(cls, device="cpu"):
        gen = super().__new__(cls, "cpu")
        gen.plays_cuda = torch.device(device).type == "cuda"
        return gen

    @property
    def device(self) -> torch.device:
        return CUDA if self.plays_cuda else CPU


def _check_generator(kwargs: dict, device: torch.device):
    "PyTorch's error for a random draw on one device with a generator of the other."
    gen = kwargs.get("generator")
    if gen is not None and getattr(gen, "plays_cuda", False) != (device.type == "cuda"):
        found = "cuda" if getattr(gen, "plays_cuda", False) else "cpu"
        raise RuntimeError(f"Expected a '{device.type}' device type for generator but found '{found}'")


def _check_same_device(func, tensors: list) -> torch.device:
    "The common played device of an operation's tensors, or PyTorch's error when a cuda and a CPU tensor meet."
    devices = {_device(t).type for t in tensors if not (t.dim() == 0 and _device(t).type == "cpu")}
    if len(devices) > 1:
        name = getattr(func, "__name__", str(func))
        raise RuntimeError(
            f"Expected all tensors to be on the same device, but found at least two devices, cuda:0 and cpu! "
            f"(when checking arguments for {name})"
        )
    if devices == {"cuda"} or any(_device(t).type == "cuda" for t in tensors):
        return CUDA
    return CPU


class FakeT4Mode(TorchFunctionMode):
    "Every PyTorch call made from Python, with cuda tensors played by marked CPU tensors (see the module's docstring)."

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        T = torch.Tensor
        if func == T.device.__get__:
            return _device(args[0])
        if func == T.is_cuda.__get__:
            return _device(args[0]).type == "cuda"
        if func == T.get_device:
            return 0 if _device(args[0]).type == "cuda" else -1
        if func in (T.grad.__get__, T.data.__get__):
            out = func(*args)
            return _mark(out, _device(args[0])) if out is not None else out
        if func == T.data.__set__:
            func(*args)
            return _mark(args[0], _device(args[1]))
        if func == T.to:
            device, rest, kw = _target(args[1:], kwargs)
            return _moved(func, args[0], device, rest, kw)
        if func == T.cuda:
            return _moved(T.to, args[0], CUDA, (CPU,), {})
        if func == T.cpu:
            return _moved(T.to, args[0], CPU, (CPU,), {})
        if func in (T.numpy, T.__array__) and _device(args[0]).type == "cuda":
            raise TypeError(
                "can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() to copy the tensor to host "
                "memory first."
            )
        if func == T.pin_memory:
            return args[0]  # a pinned copy is a CPU tensor; this one already is
        if func == T.is_pinned:
            return False
        if "device" in kwargs and kwargs["device"] is not None:  # a factory: torch.zeros(..., device="cuda")
            device = torch.device(kwargs["device"])
            _check_generator(kwargs, device)
            out = func(*args, **{**kwargs, "device": CPU if device.type == "cuda" else kwargs["device"]})
            return _mark(out, device)
        if func in (T.__getitem__, T.__setitem__, T.index_put_, T.index_put):  # a cuda tensor takes CPU indices
            if _device(args[0]).type == "cpu" and any(_device(t).type == "cuda" for t in _tensors(args[1:2], {})):
                raise RuntimeError("indices should be either on cpu or on the same device as the indexed tensor (cpu)")
            return _mark(func(*args, **kwargs), _device(args[0]))
        if func == T.copy_:  # a copy between devices is allowed; the result stays where `self` is
            return _mark(func(*args, **kwargs), _device(args[0]))
        if func == torch._has_compatible_shallow_copy_type:  # asks about the tensors' types, not their values
            return func(*args, **kwargs)
        device = _check_same_device(func, list(_tensors(args, kwargs)))
        _check_generator(kwargs, device)
        out = func(*args, **kwargs)
        return _mark(out, device) if device.type == "cuda" else out


class _Autocast(torch.amp.autocast_mode.autocast):
    "torch.autocast with 'cuda' played by the CPU's autocast; bf16 refused as a T4 refuses it."

    def __init__(self, device_type: str, dtype=None, enabled: bool = True, cache_enabled=None):
        if device_type == "cuda":
            if enabled and dtype == torch.bfloat16:
                # what PyTorch says on a T4
                raise RuntimeError("Current CUDA Device does not support bfloat16. Please switch dtype to float16.")
            device_type, dtype = "cpu", dtype or torch.float16
            dtype = _fp16_as[0] if dtype == torch.float16 else dtype
        super().__init__(device_type, dtype=dtype, enabled=enabled, cache_enabled=cache_enabled)


CPU_FLOP_LIMIT = 1e11  # one forward pass this large on the CPU while a GPU is available: a model left behind
_sizes = weakref.WeakKeyDictionary()  # module -> its parameter count, counted once


def _tokens(args) -> int:
    "Roughly how many tokens a forward call's inputs hold: its first tensor's elements (per vector, if floats)."
    for a in args:
        a = next(iter(v for v in a.values() if isinstance(v, torch.Tensor)), None) if isinstance(a, dict) else a
        if isinstance(a, torch.Tensor):
            return a.numel() if not a.is_floating_point() else a.numel() // max(1, a.shape[-1])
    return 0


def _refuse_large_work_on_the_cpu(module: torch.nn.Module, args):
    "A forward pre-hook for every module: a large forward pass with the weights on the CPU is a model left behind."
    if module not in _sizes:
        _sizes[module] = sum(p.numel() for p in module.parameters())
    flops = 2 * _sizes[module] * _tokens(args)  # positional inputs: a global hook sees no keywords
    if flops >= CPU_FLOP_LIMIT and _device(next(module.parameters())).type == "cpu":
        raise RuntimeError(
            f"fake T4: a {type(module).__name__} of {_sizes[module]:,} parameters runs a forward pass of about "
            f"{flops / 1e9:,.0f} GFLOP on the CPU while a GPU is available: move it to the device (model.to(device), "
            "or load it there)"
        )


def _cuda_answers() -> dict:
    "What torch.cuda's queries answer on a machine with one T4 (memory: the bytes of the tensors that play cuda ones)."
    return {
        "is_available": lambda: True,
        "device_count": lambda: 1,
        "current_device": lambda: 0,
        "is_initialized": lambda: True,
        "get_device_name": lambda device=None: T4.name,
        "get_device_capability": lambda device=None: (T4.major, T4.minor),
        "get_device_properties": lambda device=None: T4,
        "is_bf16_supported": lambda including_emulation=True: False,
        "mem_get_info": lambda device=None: (T4.total_memory - _Memory.now, T4.total_memory),
        "memory_allocated": lambda device=None: _Memory.now,
        "max_memory_allocated": lambda device=None: _Memory.peak,
        "reset_peak_memory_stats": lambda device=None: setattr(_Memory, "peak", _Memory.now),
        "synchronize": lambda device=None: None,
        "is_current_stream_capturing": lambda: False,  # optimizers ask it on a CUDA build (no CUDA graph here)
        "empty_cache": lambda: None,
        "set_device": lambda device: None,
        "manual_seed": lambda seed: None,
        "manual_seed_all": lambda seed: None,
    }


@contextmanager
def fake_t4(fp16_as: torch.dtype = torch.float16):
    """Inside the `with` block, this process plays a machine with one T4 (see the module's docstring); its fp16
    autocast computes in `fp16_as`."""
    _fp16_as[0] = fp16_as
    saved = {name: getattr(torch.cuda, name) for name in _cuda_answers()}
    saved_autocast, saved_generator = (torch.autocast, torch.amp.autocast), torch.Generator
    saved_parameter_new = torch.nn.Parameter.__new__
    old_is_enabled, old_get_dtype = torch.is_autocast_enabled, torch.get_autocast_dtype

    def parameter_new(cls, data=None, requires_grad=True):  # nn.Parameter(t) keeps t's played device
        p = saved_parameter_new(cls, data, requires_grad)
        return _mark(p, _device(data)) if data is not None else p

    for name, answer in _cuda_answers().items():
        setattr(torch.cuda, name, answer)
    torch.autocast = torch.amp.autocast = _Autocast
    torch.is_autocast_enabled = lambda device_type="cuda": old_is_enabled(
        "cpu" if device_type == "cuda" else device_type
    )
    torch.get_autocast_dtype = lambda device_type: old_get_dtype("cpu" if device_type == "cuda" else device_type)
    torch.nn.Parameter.__new__ = parameter_new
    torch.Generator = _Generator
    hook = torch.nn.modules.module.register_module_forward_pre_hook(_refuse_large_work_on_the_cpu)
    mode = FakeT4Mode()
    mode.__enter__()
    try:
        yield
    finally:
        mode.__exit__(None, None, None)
        hook.remove()
        for name, value in saved.items():
            setattr(torch.cuda, name, value)
        torch.autocast, torch.amp.autocast = saved_autocast
        torch.is_autocast_enabled, torch.get_autocast_dtype = old_is_enabled, old_get_dtype
        torch.nn.Parameter.__new__ = saved_parameter_new
        torch.Generator = saved_generator
        _fp16_as[0] = torch.float16


_installed = []  # install()'s context, kept: a context manager collected as garbage would exit


def install(fp16_as: torch.dtype = torch.float16):
    "Play a T4 for the rest of this process (a rehearsed notebook's first cell calls this)."
    if not _installed:
        _installed.append(fake_t4(fp16_as))
        _installed[0].__enter__()
