"""outbox: every outgoing message (SMS now, webhooks later), sent by the outbox sender (2026-12-02)"""

from app.db.migrations.shapes import create_table, drop_tables, integer, json, moment, string

revision = '0008'
down_revision = '0007'


def upgrade() -> None:
    create_table('outbox_message',
        string('kind', 32),
        string('key', 200, nullable=True),
        json('payload'),
        string('status', 16),
        integer('attempts'),
        moment('next_attempt_at'),
        moment('locked_until', nullable=True),
        string('locked_by', 64),
        string('last_error', 200),
        moment('created_at'),
        moment('sent_at', nullable=True),
        unique=['key'],
        named_indexes={
            'ix_outbox_message_created_at': ['created_at'],
            'ix_outbox_message_status_next_attempt_at': ['status', 'next_attempt_at'],
        },
    )


def downgrade() -> None:
    drop_tables('outbox_message')
