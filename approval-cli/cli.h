/*
 * iotca: the operator's command.  Each command is a function taking the
 * parsed options; it prints its result on stdout, one error line on stderr,
 * and returns the exit status (0 ok, 1 failed, 2 usage).
 */
#ifndef IOTCA_CLI_H
#define IOTCA_CLI_H

#include <jansson.h>

struct cli {
	const char	*config;	/* --config, else $IOTCA_CONFIG, else default */
	const char	*socket;	/* --socket, else $IOTCA_ADMIN_SOCKET, else config */
	int		 json;
	/* command options */
	const char	*csr, *out, *reason, *algorithm;
	const char	*offline, *db, *since;	/* audit */
	int		 days, years, revoke_certs;
	const char	*device, *status;	/* listing filters */
	long long	 expiring_within;	/* seconds; 0: none */
	int		 update;	/* discovery --update */
	int		 all;		/* approve --all */
	const char	*match;		/* approve --match GLOB */
	const char	*subtree, *account;	/* revoke-approval --subtree D
					 * [--account X] */
	/* positional arguments after the command */
	char		**args;
	int		 nargs;
};

void	cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

int	cmd_init(struct cli *);
int	cmd_audit(struct cli *);
int	cmd_discovery(struct cli *);

/* Ask the signer on admin.sock; req is stolen.  NULL after printing the
 * refusal or error. */
json_t	*cli_call(struct cli *, json_t *req);
void	 cli_print_json(const json_t *);

#endif
