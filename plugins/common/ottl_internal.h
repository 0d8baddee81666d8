/*
 * ottl_internal.h - what the OTTL lexer (ottl_lex.c), parser and compiler
 * (ottl_parse.c) and evaluator (ottl_eval.c) share: tokens, the arena a program
 * lives in, the tree the parser builds and the evaluator walks, and the function
 * table. Not for the processors; they use ottl.h.
 */
#ifndef SY_COMMON_OTTL_INTERNAL_H
#define SY_COMMON_OTTL_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "ottl.h"

/* ---- arena: every node and string of a program, freed at once ---- */

typedef struct syc__ottl_chunk_s syc__ottl_chunk_t;
typedef struct syc__ottl_arena_s {
    syc__ottl_chunk_t *head;
    size_t used, cap; /* within head */
} syc__ottl_arena_t;

/* Zeroed memory aligned for any node, or NULL when out of memory. */
void *syc__ottl_arena_alloc(syc__ottl_arena_t *a, size_t size);
void syc__ottl_arena_free(syc__ottl_arena_t *a);

/* ---- tokens ---- */

typedef enum syc__ottl_tok_e {
    TOK_EOF,
    TOK_IDENT,
    TOK_STRING, /* text/len: the decoded value */
    TOK_INT,
    TOK_FLOAT,
    TOK_BYTES, /* text/len: the decoded bytes */
    TOK_LPAREN,
    TOK_RPAREN,
    TOK_LBRACK,
    TOK_RBRACK,
    TOK_LBRACE,
    TOK_RBRACE,
    TOK_COMMA,
    TOK_DOT,
    TOK_COLON,
    TOK_EQ,
    TOK_NE,
    TOK_LT,
    TOK_LE,
    TOK_GT,
    TOK_GE,
    TOK_MATH, /* + - * / */
    TOK_ASSIGN,
    TOK_ERROR /* text: the lexer's message */
} syc__ottl_tok_t;

typedef struct syc__ottl_token_s {
    syc__ottl_tok_t type;
    size_t off;       /* byte offset of the token's first character in the source */
    size_t end;       /* one past its last byte */
    const char *text; /* identifiers: into the source; strings, bytes: the arena */
    size_t len;
    int64_t i;
    double d;
} syc__ottl_token_t;

typedef struct syc__ottl_lexer_s {
    const char *src;
    size_t len, pos;
    syc__ottl_arena_t *arena;
    char errbuf[96];
} syc__ottl_lexer_t;

/* Reads the next token. An error is a TOK_ERROR token at the offending offset. */
void syc__ottl_lex_next(syc__ottl_lexer_t *lx, syc__ottl_token_t *tok);

/* ---- the tree ---- */

typedef enum syc__ottl_node_kind_e {
    N_LITERAL, /* lit (enums are int literals) */
    N_PATH,
    N_CALL, /* a converter */
    N_LIST,
    N_CMP,
    N_AND,
    N_OR,
    N_NOT,
    N_MATH,  /* u.math: l op r, op one of + - * / */
    N_MAPLIT /* u.maplit: {"k": value, ...} */
} syc__ottl_node_kind_t;

typedef enum syc__ottl_cmp_e { CMP_EQ, CMP_NE, CMP_LT, CMP_LE, CMP_GT, CMP_GE } syc__ottl_cmp_t;

typedef struct syc__ottl_node_s syc__ottl_node_t;

/* A regex compiled once at compile time. */
typedef struct syc__ottl_regex_s {
    pcre2_code *code;
    struct syc__ottl_regex_s *next; /* every regex of the program, to free them */
} syc__ottl_regex_t;

struct syc__ottl_node_s {
    syc__ottl_node_kind_t kind;
    size_t off; /* for diagnostics */
    union {
        syc_ottl_value_t lit;
        struct {
            syc_ottl_field_t field;
            uint8_t nkeys;
            syc_ottl_key_t keys[SYC_OTTL_MAX_KEYS];
        } path;
        struct {
            int fn; /* index in syc__ottl_funcs */
            uint8_t nargs;
            syc__ottl_node_t **args;
            syc__ottl_regex_t *re; /* the function's regex argument, if any */
        } call;
        struct {
            size_t n;
            syc__ottl_node_t **items;
        } list;
        struct {
            syc__ottl_cmp_t op;
            syc__ottl_node_t *l, *r;
        } cmp;
        struct {
            syc__ottl_node_t *l, *r;
        } bin;
        syc__ottl_node_t *not_;
        struct {
            char op;
            syc__ottl_node_t *l, *r;
        } math;
        struct {
            size_t n;
            syc_ottl_key_t *keys; /* strings */
            syc__ottl_node_t **values;
        } maplit;
    } u;
};

struct syc_ottl_prog_s {
    syc__ottl_arena_t arena;
    syc_ottl_context_t ctx;
    bool is_statement;
    syc__ottl_node_t *cond;   /* condition, or the statement's where (NULL if none) */
    syc__ottl_node_t *editor; /* statements: an N_CALL of an editor */
    syc__ottl_regex_t *regexes;
};

/* ---- functions ---- */

typedef enum syc__ottl_fn_e {
    FN_ISMATCH,
    FN_ISSTRING,
    FN_ISINT,
    FN_ISDOUBLE,
    FN_ISBOOL,
    FN_ISMAP,
    FN_ISLIST,
    FN_LEN,
    FN_CONCAT,
    FN_HASATTRKEYONDATAPOINT,
    FN_HASATTRONDATAPOINT,
    FN_INT,
    FN_DOUBLE,
    FN_STRING,
    FN_TOLOWERCASE,
    FN_TOUPPERCASE,
    FN_SUBSTRING,
    FN_SHA256,
    FN_SHA1,
    FN_MD5,
    FN_SPLIT,
    /* editors */
    FN_SET,
    FN_DELETE_KEY,
    FN_DELETE_MATCHING_KEYS,
    FN_KEEP_KEYS,
    FN_REPLACE_PATTERN,
    FN_REPLACE_ALL_PATTERNS,
    FN_TRUNCATE_ALL,
    FN_LIMIT,
    FN_COUNT_
} syc__ottl_fn_t;

/* What an argument must be, checked at compile time. */
typedef enum syc__ottl_arg_e {
    ARG_VALUE,   /* any value: literal, path, converter, list */
    ARG_PATH,    /* a path (something set() or an editor can write) */
    ARG_STRING,  /* a string literal */
    ARG_REGEX,   /* a string literal compiled as a regex */
    ARG_REPL,    /* a string literal used as a replacement ($1, ${name}) */
    ARG_INT,     /* a non-negative int literal */
    ARG_STRLIST, /* a list of string literals */
    ARG_LIST,    /* a list of values */
    ARG_MODE,    /* "key" or "value" */
    ARG_ANY      /* a value, a list or a map literal (set's value) */
} syc__ottl_arg_t;

typedef struct syc__ottl_func_s {
    const char *name;
    bool editor;
    syc_ottl_type_t returns; /* converters; SYC_OTTL_NIL when it varies */
    uint8_t nargs;           /* optional arguments are not supported yet: exact count */
    syc__ottl_arg_t args[4];
    unsigned ctx_mask; /* contexts it is valid in (1u << ctx) */
} syc__ottl_func_t;

extern const syc__ottl_func_t syc__ottl_funcs[FN_COUNT_];

#endif
