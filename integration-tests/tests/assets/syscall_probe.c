/* A test helper run inside containers: makes raw system calls through each x86 ABI
 * and prints what the kernel (and the seccomp filter) answered, one line per call.
 *
 *   syscall_probe ABI:NR[:ARG0] ...     ABI is x86_64 (syscall), i386 (int 0x80)
 *                                        or x32 (syscall with __X32_SYSCALL_BIT)
 *
 * prints "ABI:NR=RESULT", RESULT being the raw return value: a negative errno on
 * failure. Built static by the tests (gcc -static) so it runs in a busybox rootfs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define X32_SYSCALL_BIT 0x40000000L

static long x86_64_call(long nr, long a0) {
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a0), "S"(0L), "d"(0L)
                     : "rcx", "r11", "memory");
    return ret;
}

static long i386_call(long nr, long a0) {
    int ret;
    /* int 0x80 from 64-bit code: the i386 ABI (AUDIT_ARCH_I386), arguments in
     * ebx, ecx, edx; pointers must be below 4 GiB, so the probes pass none. */
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"((int)nr), "b"((int)a0), "c"(0), "d"(0)
                     : "memory");
    return ret;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        char abi[16];
        long nr = 0, a0 = 0;
        if (sscanf(argv[i], "%15[^:]:%li:%li", abi, &nr, &a0) < 2) {
            fprintf(stderr, "bad probe %s\n", argv[i]);
            return 2;
        }
        long ret;
        if (strcmp(abi, "x86_64") == 0)
            ret = x86_64_call(nr, a0);
        else if (strcmp(abi, "i386") == 0)
            ret = i386_call(nr, a0);
        else if (strcmp(abi, "x32") == 0)
            ret = x86_64_call(nr | X32_SYSCALL_BIT, a0);
        else {
            fprintf(stderr, "unknown abi %s\n", abi);
            return 2;
        }
        printf("%s:%ld=%ld\n", abi, nr, ret);
        fflush(stdout);
    }
    return 0;
}
