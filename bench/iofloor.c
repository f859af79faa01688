/* iofloor: the least I/O a page-at-a-time input can do when it may print nothing before the
 * page is complete and must keep memory flat, with no parsing at all: GET the page over plain
 * HTTP on loopback, write the body to an unlinked temporary file as it arrives, then copy that
 * file to stdout. `make bench` times it next to curl's transfer floor to show how much of the
 * 2x budget the required writes alone take.
 *
 *   iofloor PORT PATH TMPDIR      (the server answers with Connection: close)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static void die(const char *what) { perror(what); exit(1); }

static void put(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) die("write");
        p += w;
        n -= (size_t)w;
    }
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: iofloor PORT PATH TMPDIR\n");
        return 2;
    }
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[1]))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
    char req[1024];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", argv[2]);
    put(s, req, (size_t)n);
    int tmp = open(argv[3], O_TMPFILE | O_RDWR, 0600);
    if (tmp < 0) die("open");
    static char buf[64 * 1024];
    int in_body = 0;
    for (;;) {
        ssize_t r = read(s, buf, sizeof buf);
        if (r < 0) die("read");
        if (r == 0) break;
        char *p = buf;
        size_t len = (size_t)r;
        if (!in_body) {
            /* The head of a loopback answer arrives in the first read. */
            char *end = memmem(buf, len, "\r\n\r\n", 4);
            if (!end) { fprintf(stderr, "no response head in the first read\n"); return 1; }
            p = end + 4;
            len -= (size_t)(p - buf);
            in_body = 1;
        }
        put(tmp, p, len);
    }
    struct stat st;
    if (fstat(tmp, &st) < 0) die("fstat");
    off_t off = 0;
    while (off < st.st_size) {
        ssize_t w = sendfile(1, tmp, &off, (size_t)(st.st_size - off));
        if (w <= 0) die("sendfile");
    }
    return 0;
}
