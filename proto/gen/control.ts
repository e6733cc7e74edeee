import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { Ack as _eddy_control_v1_Ack, Ack__Output as _eddy_control_v1_Ack__Output } from './eddy/control/v1/Ack';
import type { CancelTasks as _eddy_control_v1_CancelTasks, CancelTasks__Output as _eddy_control_v1_CancelTasks__Output } from './eddy/control/v1/CancelTasks';
import type { CheckpointAck as _eddy_control_v1_CheckpointAck, CheckpointAck__Output as _eddy_control_v1_CheckpointAck__Output } from './eddy/control/v1/CheckpointAck';
import type { CheckpointComplete as _eddy_control_v1_CheckpointComplete, CheckpointComplete__Output as _eddy_control_v1_CheckpointComplete__Output } from './eddy/control/v1/CheckpointComplete';
import type { CheckpointPart as _eddy_control_v1_CheckpointPart, CheckpointPart__Output as _eddy_control_v1_CheckpointPart__Output } from './eddy/control/v1/CheckpointPart';
import type { CutCounters as _eddy_control_v1_CutCounters, CutCounters__Output as _eddy_control_v1_CutCounters__Output } from './eddy/control/v1/CutCounters';
import type { DeltaRef as _eddy_control_v1_DeltaRef, DeltaRef__Output as _eddy_control_v1_DeltaRef__Output } from './eddy/control/v1/DeltaRef';
import type { DeployTasks as _eddy_control_v1_DeployTasks, DeployTasks__Output as _eddy_control_v1_DeployTasks__Output } from './eddy/control/v1/DeployTasks';
import type { FileCommit as _eddy_control_v1_FileCommit, FileCommit__Output as _eddy_control_v1_FileCommit__Output } from './eddy/control/v1/FileCommit';
import type { Heartbeat as _eddy_control_v1_Heartbeat, Heartbeat__Output as _eddy_control_v1_Heartbeat__Output } from './eddy/control/v1/Heartbeat';
import type { JobCounters as _eddy_control_v1_JobCounters, JobCounters__Output as _eddy_control_v1_JobCounters__Output } from './eddy/control/v1/JobCounters';
import type { KeyGroupRange as _eddy_control_v1_KeyGroupRange, KeyGroupRange__Output as _eddy_control_v1_KeyGroupRange__Output } from './eddy/control/v1/KeyGroupRange';
import type { Leave as _eddy_control_v1_Leave, Leave__Output as _eddy_control_v1_Leave__Output } from './eddy/control/v1/Leave';
import type { MoveTasks as _eddy_control_v1_MoveTasks, MoveTasks__Output as _eddy_control_v1_MoveTasks__Output } from './eddy/control/v1/MoveTasks';
import type { QueryReply as _eddy_control_v1_QueryReply, QueryReply__Output as _eddy_control_v1_QueryReply__Output } from './eddy/control/v1/QueryReply';
import type { QueryRequest as _eddy_control_v1_QueryRequest, QueryRequest__Output as _eddy_control_v1_QueryRequest__Output } from './eddy/control/v1/QueryRequest';
import type { QueryValue as _eddy_control_v1_QueryValue, QueryValue__Output as _eddy_control_v1_QueryValue__Output } from './eddy/control/v1/QueryValue';
import type { Register as _eddy_control_v1_Register, Register__Output as _eddy_control_v1_Register__Output } from './eddy/control/v1/Register';
import type { RegisterReply as _eddy_control_v1_RegisterReply, RegisterReply__Output as _eddy_control_v1_RegisterReply__Output } from './eddy/control/v1/RegisterReply';
import type { RestoreFrom as _eddy_control_v1_RestoreFrom, RestoreFrom__Output as _eddy_control_v1_RestoreFrom__Output } from './eddy/control/v1/RestoreFrom';
import type { SectionRef as _eddy_control_v1_SectionRef, SectionRef__Output as _eddy_control_v1_SectionRef__Output } from './eddy/control/v1/SectionRef';
import type { SkippedRecord as _eddy_control_v1_SkippedRecord, SkippedRecord__Output as _eddy_control_v1_SkippedRecord__Output } from './eddy/control/v1/SkippedRecord';
import type { SourcePosition as _eddy_control_v1_SourcePosition, SourcePosition__Output as _eddy_control_v1_SourcePosition__Output } from './eddy/control/v1/SourcePosition';
import type { StageCounters as _eddy_control_v1_StageCounters, StageCounters__Output as _eddy_control_v1_StageCounters__Output } from './eddy/control/v1/StageCounters';
import type { StartTasks as _eddy_control_v1_StartTasks, StartTasks__Output as _eddy_control_v1_StartTasks__Output } from './eddy/control/v1/StartTasks';
import type { TaskFailure as _eddy_control_v1_TaskFailure, TaskFailure__Output as _eddy_control_v1_TaskFailure__Output } from './eddy/control/v1/TaskFailure';
import type { TriggerCheckpoint as _eddy_control_v1_TriggerCheckpoint, TriggerCheckpoint__Output as _eddy_control_v1_TriggerCheckpoint__Output } from './eddy/control/v1/TriggerCheckpoint';
import type { WatchEvent as _eddy_control_v1_WatchEvent, WatchEvent__Output as _eddy_control_v1_WatchEvent__Output } from './eddy/control/v1/WatchEvent';
import type { WatchRegister as _eddy_control_v1_WatchRegister, WatchRegister__Output as _eddy_control_v1_WatchRegister__Output } from './eddy/control/v1/WatchRegister';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  eddy: {
    control: {
      v1: {
        Ack: MessageTypeDefinition<_eddy_control_v1_Ack, _eddy_control_v1_Ack__Output>
        CancelTasks: MessageTypeDefinition<_eddy_control_v1_CancelTasks, _eddy_control_v1_CancelTasks__Output>
        CheckpointAck: MessageTypeDefinition<_eddy_control_v1_CheckpointAck, _eddy_control_v1_CheckpointAck__Output>
        CheckpointComplete: MessageTypeDefinition<_eddy_control_v1_CheckpointComplete, _eddy_control_v1_CheckpointComplete__Output>
        CheckpointPart: MessageTypeDefinition<_eddy_control_v1_CheckpointPart, _eddy_control_v1_CheckpointPart__Output>
        CutCounters: MessageTypeDefinition<_eddy_control_v1_CutCounters, _eddy_control_v1_CutCounters__Output>
        DeltaRef: MessageTypeDefinition<_eddy_control_v1_DeltaRef, _eddy_control_v1_DeltaRef__Output>
        DeployTasks: MessageTypeDefinition<_eddy_control_v1_DeployTasks, _eddy_control_v1_DeployTasks__Output>
        FileCommit: MessageTypeDefinition<_eddy_control_v1_FileCommit, _eddy_control_v1_FileCommit__Output>
        Heartbeat: MessageTypeDefinition<_eddy_control_v1_Heartbeat, _eddy_control_v1_Heartbeat__Output>
        JobCounters: MessageTypeDefinition<_eddy_control_v1_JobCounters, _eddy_control_v1_JobCounters__Output>
        KeyGroupRange: MessageTypeDefinition<_eddy_control_v1_KeyGroupRange, _eddy_control_v1_KeyGroupRange__Output>
        Leave: MessageTypeDefinition<_eddy_control_v1_Leave, _eddy_control_v1_Leave__Output>
        MoveTasks: MessageTypeDefinition<_eddy_control_v1_MoveTasks, _eddy_control_v1_MoveTasks__Output>
        QueryReply: MessageTypeDefinition<_eddy_control_v1_QueryReply, _eddy_control_v1_QueryReply__Output>
        QueryRequest: MessageTypeDefinition<_eddy_control_v1_QueryRequest, _eddy_control_v1_QueryRequest__Output>
        QueryValue: MessageTypeDefinition<_eddy_control_v1_QueryValue, _eddy_control_v1_QueryValue__Output>
        Register: MessageTypeDefinition<_eddy_control_v1_Register, _eddy_control_v1_Register__Output>
        RegisterReply: MessageTypeDefinition<_eddy_control_v1_RegisterReply, _eddy_control_v1_RegisterReply__Output>
        RestoreFrom: MessageTypeDefinition<_eddy_control_v1_RestoreFrom, _eddy_control_v1_RestoreFrom__Output>
        SectionRef: MessageTypeDefinition<_eddy_control_v1_SectionRef, _eddy_control_v1_SectionRef__Output>
        SkippedRecord: MessageTypeDefinition<_eddy_control_v1_SkippedRecord, _eddy_control_v1_SkippedRecord__Output>
        SourcePosition: MessageTypeDefinition<_eddy_control_v1_SourcePosition, _eddy_control_v1_SourcePosition__Output>
        StageCounters: MessageTypeDefinition<_eddy_control_v1_StageCounters, _eddy_control_v1_StageCounters__Output>
        StartTasks: MessageTypeDefinition<_eddy_control_v1_StartTasks, _eddy_control_v1_StartTasks__Output>
        TaskFailure: MessageTypeDefinition<_eddy_control_v1_TaskFailure, _eddy_control_v1_TaskFailure__Output>
        TriggerCheckpoint: MessageTypeDefinition<_eddy_control_v1_TriggerCheckpoint, _eddy_control_v1_TriggerCheckpoint__Output>
        WatchEvent: MessageTypeDefinition<_eddy_control_v1_WatchEvent, _eddy_control_v1_WatchEvent__Output>
        WatchRegister: MessageTypeDefinition<_eddy_control_v1_WatchRegister, _eddy_control_v1_WatchRegister__Output>
      }
    }
  }
}

