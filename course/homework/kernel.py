"""The kernel a submission runs in: ipykernel after setting resource limits on its own process (Linux).

    python -m course.homework.kernel MEMORY_BYTES FILE_BYTES -f CONNECTION_FILE

``RLIMIT_AS`` caps the address space (an allocation beyond it raises MemoryError, or the kernel dies),
``RLIMIT_FSIZE`` caps the size of any one file the kernel writes, ``RLIMIT_CORE`` 0 keeps crashes from
dumping core. The limits are inherited by every process the notebook starts.
"""
import sys


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    memory, file_size, rest = int(argv[0]), int(argv[1]), argv[2:]
    try:
        import resource
    except ImportError:   # not Linux / macOS: run without limits (grade.py says so)
        resource = None
    if resource is not None:
        for limit, value in ((resource.RLIMIT_AS, memory), (resource.RLIMIT_FSIZE, file_size),
                             (resource.RLIMIT_CORE, 0)):
            if value > 0 or limit == resource.RLIMIT_CORE:
                resource.setrlimit(limit, (value, value))
    from ipykernel import kernelapp
    kernelapp.launch_new_instance(argv=rest)


if __name__ == "__main__":
    main()
