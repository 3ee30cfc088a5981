/*
 * The trampoline launcher on Windows: no C runtime, entry point xb_entry. See launcher.c.
 *
 * Interpreter lookup. Kind 0: the spec as is (must be absolute). Kind 1: the directory of the
 * launcher's real path + the spec, '/' becoming '\'. Kind 2: each non-empty PATH entry, quotes
 * removed, with ".exe" appended to the name unless it ends with it. Not found: exit 102 listing
 * every candidate path tried.
 *
 * CreateProcessW of `"interpreter" "launcher path" <args>`, where <args> is the launcher's own
 * command line after its program name, passed on verbatim (so the child parses exactly what the
 * caller wrote, whatever its quoting); the two inserted paths are quoted by the MSVCRT rules.
 * The child is put in a job object with KILL_ON_JOB_CLOSE (it dies with the launcher;
 * SILENT_BREAKAWAY_OK leaves its own children alone, as py.exe, distlib and uv do),
 * Ctrl-C/Ctrl-Break are ignored by the launcher through a handler that returns TRUE
 * (SetConsoleCtrlHandler(NULL, TRUE) would be inherited and make the child ignore Ctrl-C too),
 * and the launcher exits with the child's exit code. No C runtime: only KERNEL32 is imported,
 * and USER32 is loaded at run time in GUI builds only (error dialog, busy cursor). Console or
 * GUI is chosen at link time with -Wl,--subsystem,console|windows; the launcher reads its own
 * PE header to know which.
 */

#include "launcher_common.h"

#define WIN32_LEAN_AND_MEAN
#include <windows.h>

/* Without a C runtime, these must be here: the compiler emits calls to them
 * for struct copies, zeroing and loops it recognises. volatile keeps it from
 * turning their own loops back into calls to themselves. */
void *memset(void *dst, int c, size_t n);
void *memcpy(void *restrict dst, const void *restrict src, size_t n);
size_t strlen(const char *s);
size_t wcslen(const wchar_t *s);
size_t strlen(const char *s) {
    const volatile char *p = s;
    while (*p) p++;
    return (size_t)(p - s);
}
size_t wcslen(const wchar_t *s) {
    const volatile wchar_t *p = s;
    while (*p) p++;
    return (size_t)(p - s);
}
void *memset(void *dst, int c, size_t n) {
    volatile unsigned char *d = dst;
    while (n--) *d++ = (unsigned char)c;
    return dst;
}
void *memcpy(void *restrict dst, const void *restrict src, size_t n) {
    volatile unsigned char *d = dst;
    const unsigned char *s = src;
    while (n--) *d++ = *s++;
    return dst;
}

static void *xb_alloc(size_t n) { return HeapAlloc(GetProcessHeap(), 0, n ? n : 1); }
static void *xb_realloc(void *p, size_t n) {
    return p ? HeapReAlloc(GetProcessHeap(), 0, p, n ? n : 1) : HeapAlloc(GetProcessHeap(), 0, n ? n : 1);
}
static void xb_free(void *p) {
    if (p) HeapFree(GetProcessHeap(), 0, p);
}

static size_t wlen(const wchar_t *s) {
    size_t n = 0;
    while (s[n]) n++;
    return n;
}

/* A growable wide string; running out of memory exits with 100. */
typedef struct {
    wchar_t *p;
    size_t n, cap;
} wbuf;

static void wb_add(wbuf *b, const wchar_t *s, size_t n) {
    b->p = xb_grow(b->p, &b->cap, b->n + n + 1, sizeof *b->p);
    for (size_t i = 0; i < n; i++) b->p[b->n + i] = s[i];
    b->n += n;
    b->p[b->n] = 0;
}

static void wb_str(wbuf *b, const wchar_t *s) { wb_add(b, s, wlen(s)); }
static void wb_ch(wbuf *b, wchar_t c) { wb_add(b, &c, 1); }

/* Appends one argument quoted so that CommandLineToArgvW and the MSVCRT/UCRT
 * parsers give it back unchanged: backslashes are literal except before a
 * double quote, where 2n backslashes + quote mean n backslashes and the quote
 * toggles quoting, and 2n+1 + quote mean n backslashes and a literal quote. */
static void wb_quoted(wbuf *b, const wchar_t *arg) {
    int plain = arg[0] != 0;
    for (const wchar_t *p = arg; *p; p++)
        if (*p == L' ' || *p == L'\t' || *p == L'\n' || *p == L'\v' || *p == L'"') plain = 0;
    if (plain) {
        wb_str(b, arg);
        return;
    }
    wb_ch(b, L'"');
    for (const wchar_t *p = arg;; p++) {
        size_t backslashes = 0;
        while (*p == L'\\') {
            p++;
            backslashes++;
        }
        if (!*p) { /* double them: the closing quote follows */
            for (size_t i = 0; i < backslashes * 2; i++) wb_ch(b, L'\\');
            break;
        }
        if (*p == L'"') {
            for (size_t i = 0; i < backslashes * 2 + 1; i++) wb_ch(b, L'\\');
        } else {
            for (size_t i = 0; i < backslashes; i++) wb_ch(b, L'\\');
        }
        wb_ch(b, *p);
    }
    wb_ch(b, L'"');
}

/* The raw command line after the program name, as the UCRT splits it: the
 * program name runs to the first space or tab outside double quotes (quotes
 * toggle, backslashes are not special there). */
static const wchar_t *args_tail(const wchar_t *cmd) {
    int quoted = 0;
    for (; *cmd; cmd++) {
        if (*cmd == L'"')
            quoted = !quoted;
        else if (!quoted && (*cmd == L' ' || *cmd == L'\t'))
            break;
    }
    while (*cmd == L' ' || *cmd == L'\t') cmd++;
    return cmd;
}

static const char *to_utf8(const wchar_t *w) {
    int n = WideCharToMultiByte(CP_UTF8, 0, w, -1, NULL, 0, NULL, NULL);
    char *s = n > 0 ? xb_alloc((size_t)n) : 0;
    if (!s || WideCharToMultiByte(CP_UTF8, 0, w, -1, s, n, NULL, NULL) <= 0) return "?";
    return s;
}

static wchar_t *from_utf8(const char *s, size_t len) {
    int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, (int)len, NULL, 0);
    if (n <= 0) return 0;
    wchar_t *w = xb_alloc(((size_t)n + 1) * sizeof *w);
    if (!w) return 0;
    if (MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, (int)len, w, n) != n) return 0;
    w[n] = 0;
    return w;
}

static int is_gui(void) {
    const unsigned char *base = (const unsigned char *)GetModuleHandleW(NULL);
    const IMAGE_DOS_HEADER *dos = (const IMAGE_DOS_HEADER *)base;
    const IMAGE_NT_HEADERS *nt = (const IMAGE_NT_HEADERS *)(base + dos->e_lfanew);
    return nt->OptionalHeader.Subsystem == IMAGE_SUBSYSTEM_WINDOWS_GUI;
}

static HMODULE user32(void) { return LoadLibraryExW(L"user32.dll", NULL, LOAD_LIBRARY_SEARCH_SYSTEM32); }

typedef int(WINAPI *message_box_fn)(HWND, LPCWSTR, LPCWSTR, UINT);

_Noreturn static void xb_fail(int code, const char *utf8, size_t len) {
    HANDLE h = GetStdHandle(STD_ERROR_HANDLE);
    wchar_t *w = from_utf8(utf8, len);
    DWORD mode, done;
    if (h && h != INVALID_HANDLE_VALUE) {
        if (w && GetConsoleMode(h, &mode))
            WriteConsoleW(h, w, (DWORD)wlen(w), &done, NULL);
        else
            WriteFile(h, utf8, (DWORD)len, &done, NULL);
    } else if (w && is_gui()) { /* a GUI program started without a console */
        HMODULE u = user32();
        message_box_fn box = u ? (message_box_fn)(void (*)(void))GetProcAddress(u, "MessageBoxW") : 0;
        if (box) box(NULL, w, L"crossbuild trampoline", MB_OK | MB_ICONERROR);
    }
    ExitProcess((UINT)code);
}

typedef struct {
    HANDLE h;
} file_ctx;

static int read_at_handle(void *ctx, uint64_t off, void *buf, uint32_t n) {
    HANDLE h = ((file_ctx *)ctx)->h;
    char *p = buf;
    while (n) {
        OVERLAPPED ov = {0};
        ov.Offset = (DWORD)off;
        ov.OffsetHigh = (DWORD)(off >> 32);
        DWORD got = 0;
        if (!ReadFile(h, p, n, &got, &ov) || got == 0) return -1;
        p += got;
        off += got;
        n -= got;
    }
    return 0;
}

static wchar_t *self_path(void) {
    for (DWORD cap = 260; cap <= 65536; cap *= 2) {
        wchar_t *buf = xb_alloc(cap * sizeof *buf);
        if (!buf) return 0;
        DWORD n = GetModuleFileNameW(NULL, buf, cap);
        if (n == 0) return 0;
        if (n < cap) return buf;
        xb_free(buf);
    }
    return 0;
}

static int file_exists(const wchar_t *p) {
    DWORD a = GetFileAttributesW(p);
    return a != INVALID_FILE_ATTRIBUTES && !(a & FILE_ATTRIBUTE_DIRECTORY);
}

static void add_tried(sbuf *tried, const wchar_t *cand) {
    sb_str(tried, "\n  ");
    sb_str(tried, to_utf8(cand));
}

static int is_absolute_w(const wchar_t *p) {
    if ((p[0] == L'\\' || p[0] == L'/') && (p[1] == L'\\' || p[1] == L'/')) return 1; /* UNC, \\?\ */
    return ((p[0] >= L'A' && p[0] <= L'Z') || (p[0] >= L'a' && p[0] <= L'z')) && p[1] == L':' &&
           (p[2] == L'\\' || p[2] == L'/');
}

static int ends_with_exe(const wchar_t *p, size_t n) {
    if (n < 4) return 0;
    const wchar_t *e = p + n - 4;
    return e[0] == L'.' && (e[1] | 32) == L'e' && (e[2] | 32) == L'x' && (e[3] | 32) == L'e';
}

static wchar_t *resolve(const wchar_t *self_w, const char *self, const footer_t *ft) {
    sbuf tried = {0};
    int ntried = 0;
    wchar_t *spec = from_utf8(ft->spec, ft->spec_len);
    if (!spec) die2(XB_EXIT_CORRUPT, self, "corrupt trampoline footer: the interpreter spec is not UTF-8", 0);
    if (ft->kind != XB_KIND_PATH)
        for (wchar_t *p = spec; *p; p++)
            if (*p == L'/') *p = L'\\';
    if (ft->kind == XB_KIND_ABSOLUTE) {
        if (!is_absolute_w(spec))
            die2(XB_EXIT_CORRUPT, self, "corrupt trampoline footer: interpreter is not an absolute path: ", ft->spec);
        if (file_exists(spec)) return spec;
        add_tried(&tried, spec);
        not_found(self, ft, &tried, 1, 0);
    }
    if (ft->kind == XB_KIND_RELATIVE) {
        if (is_absolute_w(spec) || spec[0] == L'\\')
            die2(XB_EXIT_CORRUPT, self, "corrupt trampoline footer: relative interpreter path is absolute: ", ft->spec);
        size_t dir = wlen(self_w);
        while (dir && self_w[dir - 1] != L'\\' && self_w[dir - 1] != L'/') dir--;
        wbuf c = {0};
        wb_add(&c, self_w, dir);
        wb_str(&c, spec);
        if (file_exists(c.p)) return c.p;
        add_tried(&tried, c.p);
        not_found(self, ft, &tried, 1, 0);
    }
    /* XB_KIND_PATH: each PATH entry (quotes removed, empty ones skipped),
     * with ".exe" appended unless the name already ends with it. */
    for (wchar_t *p = spec; *p; p++)
        if (*p == L'/' || *p == L'\\' || *p == L':')
            die2(XB_EXIT_CORRUPT, self, "corrupt trampoline footer: PATH interpreter name is a path: ", ft->spec);
    size_t speclen = wlen(spec);
    int add_exe = !ends_with_exe(spec, speclen);
    DWORD need = GetEnvironmentVariableW(L"PATH", NULL, 0);
    wchar_t *path = need ? xb_alloc((need + 1) * sizeof *path) : 0;
    if (!path || GetEnvironmentVariableW(L"PATH", path, need + 1) == 0) {
        not_found(self, ft, &tried, 0, " (PATH is not set)");
    }
    for (wchar_t *p = path;;) {
        wchar_t *end = p;
        while (*end && *end != L';') end++;
        wbuf c = {0};
        for (wchar_t *q = p; q < end; q++)
            if (*q != L'"') wb_ch(&c, *q);
        if (c.n) {
            if (c.p[c.n - 1] != L'\\' && c.p[c.n - 1] != L'/') wb_ch(&c, L'\\');
            wb_str(&c, spec);
            if (add_exe) wb_str(&c, L".exe");
            if (file_exists(c.p)) return c.p;
            add_tried(&tried, c.p);
            ntried++;
            xb_free(c.p);
        }
        if (!*end) break;
        p = end + 1;
    }
    not_found(self, ft, &tried, ntried, ntried ? 0 : " (PATH has no directories)");
    return 0;
}

static BOOL WINAPI ignore_ctrl(DWORD type) {
    (void)type;
    return TRUE; /* the child, on the same console, gets the event and decides */
}

static HANDLE inheritable(DWORD which) {
    HANDLE h = GetStdHandle(which), dup = NULL;
    if (!h || h == INVALID_HANDLE_VALUE) return NULL;
    if (!DuplicateHandle(GetCurrentProcess(), h, GetCurrentProcess(), &dup, 0, TRUE, DUPLICATE_SAME_ACCESS))
        return NULL;
    return dup;
}

typedef BOOL(WINAPI *post_message_fn)(HWND, UINT, WPARAM, LPARAM);
typedef BOOL(WINAPI *get_message_fn)(LPMSG, HWND, UINT, UINT);

/* Windows shows the "app starting" cursor until a GUI program pumps
 * messages; the launcher never does, so do it once. */
static void clear_busy_cursor(void) {
    HMODULE u = user32();
    if (!u) return;
    post_message_fn post = (post_message_fn)(void (*)(void))GetProcAddress(u, "PostMessageW");
    get_message_fn get = (get_message_fn)(void (*)(void))GetProcAddress(u, "GetMessageW");
    if (post && get) {
        MSG msg;
        post(NULL, 0, 0, 0);
        get(&msg, NULL, 0, 0);
    }
}

void xb_entry(void);
void xb_entry(void) {
    wchar_t *self_w = self_path();
    if (!self_w) die2(XB_EXIT_SELF, 0, "cannot find its own executable (GetModuleFileNameW failed)", 0);
    const char *self = to_utf8(self_w);
    file_ctx fc;
    fc.h = CreateFileW(self_w, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                       OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
    LARGE_INTEGER size;
    if (fc.h == INVALID_HANDLE_VALUE || !GetFileSizeEx(fc.h, &size))
        die2(XB_EXIT_SELF, self, "cannot open its own file", 0);
    footer_t ft;
    read_footer(read_at_handle, &fc, (uint64_t)size.QuadPart, self, &ft);
    CloseHandle(fc.h);
    wchar_t *interp = resolve(self_w, self, &ft);

    wbuf cmd = {0};
    wb_quoted(&cmd, interp);
    wb_ch(&cmd, L' ');
    wb_quoted(&cmd, self_w);
    const wchar_t *tail = args_tail(GetCommandLineW());
    if (*tail) {
        wb_ch(&cmd, L' ');
        wb_str(&cmd, tail);
    }

    HANDLE job = CreateJobObjectW(NULL, NULL);
    if (job) {
        JOBOBJECT_EXTENDED_LIMIT_INFORMATION info = {0};
        info.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE | JOB_OBJECT_LIMIT_SILENT_BREAKAWAY_OK;
        SetInformationJobObject(job, JobObjectExtendedLimitInformation, &info, sizeof info);
    }
    SetConsoleCtrlHandler(ignore_ctrl, TRUE);

    STARTUPINFOW si;
    GetStartupInfoW(&si);
    si.cb = sizeof si;
    si.lpReserved = NULL;
    si.lpReserved2 = NULL; /* CRT file-descriptor blocks meant for the launcher */
    si.cbReserved2 = 0;
    /* hStdInput doubles as the hotkey/monitor of STARTF_USEHOTKEY (0x200) and
     * STARTF_MONITOR (0x400): those cannot travel with standard handles. */
    si.dwFlags = (si.dwFlags & ~(DWORD)0x600) | STARTF_USESTDHANDLES;
    si.hStdInput = inheritable(STD_INPUT_HANDLE);
    si.hStdOutput = inheritable(STD_OUTPUT_HANDLE);
    si.hStdError = inheritable(STD_ERROR_HANDLE);
    PROCESS_INFORMATION pi;
    if (!CreateProcessW(interp, cmd.p, NULL, NULL, TRUE, CREATE_SUSPENDED | CREATE_UNICODE_ENVIRONMENT, NULL, NULL,
                        &si, &pi)) {
        DWORD err = GetLastError();
        sbuf b = {0};
        sb_intro(&b, self);
        sb_str(&b, "cannot start interpreter ");
        sb_str(&b, to_utf8(interp));
        sb_str(&b, ": error ");
        sb_u64(&b, err);
        wchar_t *text = NULL;
        if (FormatMessageW(FORMAT_MESSAGE_ALLOCATE_BUFFER | FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS,
                           NULL, err, 0, (LPWSTR)&text, 0, NULL) &&
            text) {
            size_t n = wlen(text);
            while (n && (text[n - 1] == L'\r' || text[n - 1] == L'\n' || text[n - 1] == L' ')) text[--n] = 0;
            sb_str(&b, " (");
            sb_str(&b, to_utf8(text));
            sb_str(&b, ")");
        }
        die(XB_EXIT_EXEC, &b);
    }
    if (job) AssignProcessToJobObject(job, pi.hProcess); /* best effort: nested jobs need Windows 8 */
    ResumeThread(pi.hThread);
    CloseHandle(pi.hThread);
    if (si.hStdInput) CloseHandle(si.hStdInput);
    if (si.hStdOutput) CloseHandle(si.hStdOutput);
    if (si.hStdError) CloseHandle(si.hStdError);
    if (is_gui()) clear_busy_cursor();
    WaitForSingleObject(pi.hProcess, INFINITE);
    DWORD code = 1;
    GetExitCodeProcess(pi.hProcess, &code);
    ExitProcess(code);
}
