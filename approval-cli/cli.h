/*
 * iotca: the operator's command.  Each command is a function taking the
 * parsed options; it prints its result on stdout, one error line on stderr,
 * and returns the exit status (0 ok, 1 failed, 2 usage).
 */
#ifndef IOTCA_CLI_H
#define IOTCA_CLI_H

struct cli {
	const char	*config;	/* --config, else $IOTCA_CONFIG, else default */
	const char	*socket;	/* --socket, else $IOTCA_ADMIN_SOCKET, else config */
	int		 json;
	/* command options */
	const char	*csr, *out, *reason, *algorithm;
	int		 days, years, revoke_certs;
	/* positional arguments after the command */
	char		**args;
	int		 nargs;
};

void	cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

int	cmd_init(struct cli *);

#endif
