-- Second factors of portal admins. An authenticator app (TOTP) counts once confirmed with a
-- code; its secret is encrypted under the master key, and the last accepted time step is kept
-- so that no code is accepted twice. (Passkeys join this table with their own columns.)
create table admin_factors (
    org_id           uuid        not null,
    id               uuid        not null,
    admin_id         uuid        not null,
    kind             text        not null constraint admin_factors_kind_check check (kind in ('totp')),
    name             text        not null constraint admin_factors_name_check check (length(name) between 1 and 100),
    secret_encrypted bytea,
    confirmed_at     timestamptz,
    last_used_at     timestamptz,
    last_totp_step   bigint,
    created_at       timestamptz not null,
    constraint admin_factors_pkey primary key (org_id, id),
    constraint admin_factors_admin_fkey foreign key (org_id, admin_id) references admins (org_id, id) on delete cascade
);
-- One authenticator app per admin.
create unique index admin_factors_one_totp_key on admin_factors (org_id, admin_id) where kind = 'totp';

-- Single-use recovery codes, shown once and stored as SHA-256 (they are 80-bit random).
create table admin_recovery_codes (
    org_id     uuid        not null,
    admin_id   uuid        not null,
    code_hash  bytea       not null,
    created_at timestamptz not null,
    used_at    timestamptz,
    constraint admin_recovery_codes_pkey primary key (org_id, admin_id, code_hash),
    constraint admin_recovery_codes_admin_fkey foreign key (org_id, admin_id) references admins (org_id, id) on delete cascade
);

-- Who must use a second factor after a password: nobody, owners, or every admin. Single
-- sign-on relies on the identity provider's own.
alter table organizations add column second_factor_policy text not null default 'none'
    constraint organizations_second_factor_policy_check check (second_factor_policy in ('none', 'owners', 'all'));

-- The way back in for an admin who lost every factor (`mandate admin recover`): a setup link
-- that sets a new password for that admin, and the moment before which their sessions no
-- longer count.
alter table admin_invitations add column recovers_admin_id uuid,
    add constraint admin_invitations_recovers_fkey foreign key (org_id, recovers_admin_id)
        references admins (org_id, id) on delete cascade;
alter table admins add column sessions_not_before timestamptz;
