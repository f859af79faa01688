/* measure: runs one command and reports its wall time, CPU time and peak RSS.
 *
 *   measure OUT -- CMD [ARGS...]    (stdout of CMD goes to OUT, stdin and stderr to /dev/null)
 *   prints: wall_us user_us sys_us maxrss_kib exit_status
 *
 * Written in C and linked statically so the launcher itself is tiny: Linux carries the
 * pre-exec memory high-water mark into the child's ru_maxrss, so launching from Python (or
 * any large process) would report that process's RSS instead of the command's. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 4 || strcmp(argv[2], "--") != 0) {
        fprintf(stderr, "usage: measure OUT -- CMD [ARGS...]\n");
        return 2;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); return 2; }
    if (pid == 0) {
        int out = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int null = open("/dev/null", O_RDWR);
        if (out < 0 || null < 0) _exit(127);
        dup2(null, 0); dup2(out, 1); dup2(null, 2);
        execvp(argv[3], argv + 3);
        _exit(127);
    }
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0) { perror("wait4"); return 2; }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long long wall = (t1.tv_sec - t0.tv_sec) * 1000000LL + (t1.tv_nsec - t0.tv_nsec) / 1000;
    long long user = ru.ru_utime.tv_sec * 1000000LL + ru.ru_utime.tv_usec;
    long long sys = ru.ru_stime.tv_sec * 1000000LL + ru.ru_stime.tv_usec;
    printf("%lld %lld %lld %ld %d\n", wall, user, sys, ru.ru_maxrss,
           WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    return 0;
}
